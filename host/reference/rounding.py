"""Per-chip float-to-int rounding and power-of-two quantization, as ESP-DL does it on each target.

ESP-DL rounds differently per chip (esp-dl/dl/dl_define_private.hpp, dl/tool/src/dl_tool.cpp):
ESP32-P4 and ESP32-S31 round half to even (the P4 uses the `fcvt.w.s ..., rne` instruction);
every other chip computes `(int)floorf(v + 0.5)`, where `v + 0.5` is evaluated in double and
converted back to float before `floorf`, so the largest float below 0.5 rounds *up* to 1.
The host must reproduce the chip's rule: a single tie decides an int8 threshold.
"""

from __future__ import annotations

import math

import numpy as np

from host.errors import HarnessError

HALF_EVEN_TARGETS = frozenset({"esp32p4", "esp32s31"})
HALF_UP_TARGETS = frozenset({"esp32s3"})
TARGETS = tuple(sorted(HALF_EVEN_TARGETS | HALF_UP_TARGETS))


def check_target(target: str) -> str:
    """Return `target` if ESP-DL's rounding rule for it is known, else raise a HarnessError."""
    if target not in HALF_EVEN_TARGETS and target not in HALF_UP_TARGETS:
        raise HarnessError(
            f"unknown target {target!r}: the host reference knows ESP-DL's rounding only for "
            f"{', '.join(TARGETS)}; pass one of these with --target"
        )
    return target


def round_float32(values: np.ndarray | float, target: str) -> np.ndarray:
    """`dl::tool::round(float)` for `target`, element-wise; returns int64 values."""
    check_target(target)
    x = np.asarray(values, dtype=np.float32)
    if target in HALF_EVEN_TARGETS:
        return np.rint(x).astype(np.int64)
    # floorf((double)v + 0.5): the sum is rounded to float before floorf.
    shifted = (x.astype(np.float64) + 0.5).astype(np.float32)
    return np.floor(shifted).astype(np.int64)


def scale_of(exponent: int) -> np.float32:
    """`DL_SCALE(exponent)` as a float32: 2**exponent."""
    if exponent > 0:
        return np.float32(1 << exponent)
    return np.float32(np.float32(1.0) / np.float32(1 << -exponent))


def inv_scale_of(exponent: int) -> np.float32:
    """The `inv_scale` ESP-DL multiplies by before rounding: 2**-exponent as a float32."""
    return np.float32(np.float32(1.0) / scale_of(exponent))


def quantize_float32(values: np.ndarray | float, inv_scale: np.float32, target: str, bits: int = 8) -> np.ndarray:
    """`dl::quantize<intN_t>(float input, float inv_scale)`: round(input * inv_scale) clipped to intN."""
    product = np.asarray(values, dtype=np.float32) * np.float32(inv_scale)
    q = round_float32(product, target)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(q, lo, hi)


def pow2_exponent(scale, what: str) -> int:
    """The exponent e of a quantization scale 2**e (ESP-DL has one per tensor); a HarnessError otherwise."""
    values = np.atleast_1d(np.asarray(scale.detach().cpu() if hasattr(scale, "detach") else scale, dtype=np.float64))
    if values.size != 1:
        raise HarnessError(f"{what} is quantized per channel; ESP-DL's yolo11 pipeline needs one exponent per tensor")
    exp = math.log2(float(values[0]))
    if not float(exp).is_integer():
        raise HarnessError(f"{what} has scale {values[0]}, not a power of two: quantize the model for an ESP-DL target")
    return int(exp)
