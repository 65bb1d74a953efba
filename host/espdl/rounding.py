"""Integer rounding as each chip does it: the shift-and-round primitive and float-to-int conversion.

ESP32-P4 (and S31) round half to even; other chips (ESP32-S3) round half up, toward +infinity
(esp-dl's dl_define_private.hpp CONFIG_ROUND_HALF_EVEN_ENABLED, tool::round, the kernels' shift code).
"""

from __future__ import annotations

import numpy as np

from host.errors import HarnessError

HALF_EVEN_TARGETS = frozenset({"esp32p4", "esp32s31"})
KNOWN_TARGETS = frozenset({"esp32p4", "esp32s31", "esp32s3"})

RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.int16): (-32768, 32767), np.dtype(np.int32): (-(2**31), 2**31 - 1)}


def check_target(target: str) -> str:
    if target not in KNOWN_TARGETS:
        raise HarnessError(f"unknown target {target!r}; the emulator knows {sorted(KNOWN_TARGETS)}")
    return target


def half_even(target: str) -> bool:
    return check_target(target) in HALF_EVEN_TARGETS


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
