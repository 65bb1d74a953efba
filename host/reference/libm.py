"""float32 expf/logf from the C library, tabulated for the few arguments ESP-DL's postprocess can produce.

ESP-DL calls `expf`/`logf` (newlib on the chip). numpy's float32 exp is its own SIMD
implementation and can differ from a C library in the last bit, so the host calls the C
library (glibc) through ctypes instead. Every `expf` argument in the yolo11 postprocess is an
integer times a power of two (int8 values times the output scale, or their differences), so a
511-entry table per exponent covers all of them and keeps the postprocess vectorised.
glibc and newlib share the same expf/logf algorithm family but are not guaranteed to agree in
the last bit for every argument: a one-ulp score difference points here first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_libm.expf.restype = ctypes.c_float
_libm.expf.argtypes = [ctypes.c_float]
_libm.logf.restype = ctypes.c_float
_libm.logf.argtypes = [ctypes.c_float]

TABLE_RADIUS = 255  # |int8 difference| <= 255


def expf(x: float) -> np.float32:
    """The C library's float32 expf."""
    return np.float32(_libm.expf(float(np.float32(x))))


def logf(x: float) -> np.float32:
    """The C library's float32 logf."""
    return np.float32(_libm.logf(float(np.float32(x))))


@functools.lru_cache(maxsize=64)
def expf_table(exponent: int) -> np.ndarray:
    """expf(k * 2**exponent) for k in [-255, 255], indexed by k + 255 (float32, read-only)."""
    step = np.float32(2.0**exponent)
    table = np.array(
        [_libm.expf(float(np.float32(k) * step)) for k in range(-TABLE_RADIUS, TABLE_RADIUS + 1)],
        dtype=np.float32,
    )
    table.setflags(write=False)
    return table


def expf_of_multiples(k: np.ndarray, exponent: int) -> np.ndarray:
    """expf(k * 2**exponent) element-wise for integer arrays `k` (float32 result)."""
    k = np.asarray(k, dtype=np.int64)
    if k.size == 0 or (k.min() >= -TABLE_RADIUS and k.max() <= TABLE_RADIUS):
        return expf_table(exponent)[k + TABLE_RADIUS]
    # int16 outputs: evaluate each distinct argument once.
    uniq, inverse = np.unique(k, return_inverse=True)
    step = np.float32(2.0**exponent)
    values = np.array([_libm.expf(float(np.float32(v) * step)) for v in uniq], dtype=np.float32)
    return values[inverse].reshape(k.shape)
