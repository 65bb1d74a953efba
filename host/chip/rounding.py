"""ESP-DL's integer arithmetic per chip: float-to-int rounding, shift-and-round, saturation, pow2 scales.

Which chip rounds how is in host.chip.targets. On half-up chips `tool::round` computes
`(int)floorf(v + 0.5)`, where `v + 0.5` is evaluated in double and converted back to float before
`floorf`, so the largest float below 0.5 rounds *up* to 1 (`round_float32`). The kernels' shift code
rounds the dropped bits half to even or half up, also for negative values (`shift_round`).
"""

from __future__ import annotations

import math

import numpy as np

from host.chip.targets import half_even
from host.errors import HarnessError

RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.int16): (-32768, 32767), np.dtype(np.int32): (-(2**31), 2**31 - 1)}


def round_float32(values: np.ndarray | float, target: str) -> np.ndarray:
    """`dl::tool::round(float)` for `target`, element-wise; returns int64 values."""
    x = np.asarray(values, dtype=np.float32)
    if half_even(target):
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


def shift_round(acc: np.ndarray, shift: np.ndarray | int, even: bool) -> np.ndarray:
    """acc * 2^-shift rounded to an integer (int64), elementwise; shift may broadcast (per channel).

    shift <= 0 is an exact left shift. shift > 0 rounds the dropped bits: half to even when `even`,
    else half up (toward +infinity), both also for negative values.
    """
    acc = np.asarray(acc, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if np.any(shift > 62) or np.any(shift < -62):
        raise HarnessError(f"requantization shift {shift.max()} is out of range: the model's exponents are corrupt")
    if shift.ndim == 0:
        s = int(shift)
        if s <= 0:
            return acc << -s
        if even:
            q = acc >> s
            rem = acc & ((1 << s) - 1)
            half = 1 << (s - 1)
            return q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))
        return (acc + (1 << (s - 1))) >> s
    pos = np.maximum(shift, 0)
    left = acc << np.maximum(-shift, 0)
    q = left >> pos
    if even:
        rem = left & ((np.int64(1) << pos) - 1)
        half = np.where(pos > 0, np.int64(1) << np.maximum(pos - 1, 0), np.int64(1) << 62)
        return q + ((pos > 0) & ((rem > half) | ((rem == half) & ((q & 1) == 1))))
    return np.where(pos > 0, (left + (np.int64(1) << np.maximum(pos - 1, 0))) >> pos, left)


def round_float(x: np.ndarray, even: bool) -> np.ndarray:
    """tool::round: half to even on P4 (fcvt rne); floor(x + 0.5) in double elsewhere."""
    x = np.asarray(x)
    if even:
        return np.rint(x)
    return np.floor(x.astype(np.float64) + 0.5)


def saturate(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    lo, hi = RANGES[np.dtype(dtype)]
    return np.clip(x, lo, hi).astype(dtype)
