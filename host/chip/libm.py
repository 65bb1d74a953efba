"""The chip's float32 `expf`/`logf` (newlib's fdlibm routines as GCC builds them), exact and vectorised.

ESP-DL calls `expf` (Softmax table, yolo11 sigmoid and DFL softmax) and `logf` (inverse_sigmoid).
ESP-IDF 5.x links Espressif's newlib fork (branch esp-4.3.0). Its `machine/ieeefp.h` leaves
`__OBSOLETE_MATH` at 1 for RISC-V and Xtensa, so `expf`/`logf` are the old Sun fdlibm float routines
(`libm/math/ef_exp.c`, `ef_log.c`, through the `wf_exp.c`/`wf_log.c` wrappers), computed entirely in
float32 - not the double-based routines of glibc (which differ from them in the last bit for about
7 % of the yolo11 table arguments). Built with -O2 or -Os for rv32imafc, GCC contracts some
`a*b + c` into fused multiply-adds (`fmadd.s`/`fnmsub.s`/`fmsub.s`); which ones is a fact read
from the compiled assembly and confirmed bit for bit against the compiled routines run under
qemu-riscv32 (tools/check_device_libm.py; README "The chip's libm").

This module transcribes those two routines with numpy float32 arithmetic (IEEE round to nearest)
and an exact float32 fma. Libm variants, by name:
- "newlib-fdlibm-fma" (CHIP_LIBM): the chip's routines with GCC's contractions (-O2/-Os);
- "newlib-fdlibm": the same source without contraction (what -O0/-O1 or -ffp-contract=off give).
Every supported target maps to CHIP_LIBM (`libm_for_target`); see the README for what is
verified (ESP32-P4) and what is assumed (ESP32-S3, ESP32-S31).

Every `expf` argument in the yolo11 postprocess is an integer times a power of two (int8 values times
the output scale, or their differences), so a 511-entry table per exponent covers them.
"""

from __future__ import annotations

import functools

import numpy as np

from host.errors import HarnessError
from host.chip.targets import check_target

CHIP_LIBM = "newlib-fdlibm-fma"
LIBMS = (CHIP_LIBM, "newlib-fdlibm")
TABLE_RADIUS = 255  # |int8 difference| <= 255
CANONICAL_NAN = 0x7FC00000  # RISC-V F returns the canonical NaN from every NaN-producing operation

f32 = np.float32
f64 = np.float64


def _f(bits: int) -> np.float32:
    return np.array([bits], dtype=np.uint32).view(f32)[0]


# ef_exp.c constants (bit patterns as the source comments give them).
_HALF = (_f(0x3F000000), _f(0xBF000000))
_LN2HI = (_f(0x3F317180), _f(0xBF317180))
_LN2LO = (_f(0x3717F7D1), _f(0xB717F7D1))
_INVLN2 = _f(0x3FB8AA3B)
_P1, _P2, _P3, _P4, _P5 = (_f(b) for b in (0x3E2AAAAB, 0xBB360B61, 0x388AB355, 0xB5DDEA0E, 0x3331BB4C))
_TWOM100 = _f(0x0D800000)
_EXP_LOG_MAX = 0x42B17217  # FLT_UWORD_LOG_MAX: larger positive arguments overflow
_EXP_LOG_MIN = 0x42CFF1B5  # FLT_UWORD_LOG_MIN: negative arguments of larger magnitude underflow
_EXP_TINY = 0x34000000  # |x| < 2**-23 returns 1 + x (esp-4.3.0; newlib 3.3.0: 2**-28)

# ef_log.c constants.
_LN2_HI = _f(0x3F317180)
_LN2_LO = _f(0x3717F7D1)
_TWO25 = _f(0x4C000000)
_THIRD = _f(0x3EAAAAAB)  # (float)0.33333333333333333
_LG = tuple(_f(b) for b in (0x3F2AAAAB, 0x3ECCCCCD, 0x3E924925, 0x3E638E29, 0x3E3A3325, 0x3E1CD04F, 0x3E178897))


def fma32(a: np.ndarray | float, b: np.ndarray | float, c: np.ndarray | float) -> np.ndarray:
    """float32 fused multiply-add: the exact a*b + c rounded once to float32 (round to nearest even).

    a*b is exact in float64 (24 + 24 bits). The float64 sum may round, and rounding that again to
    float32 could double-round at a float32 midpoint, so the sum is rounded to odd first: TwoSum
    gives its exact error, and an inexact sum with an even last bit moves one float64 ulp toward
    the error. Round-to-odd at 53 bits followed by rounding to 24 bits is the correct single rounding.
    """
    p = np.asarray(a, dtype=f32).astype(f64) * np.asarray(b, dtype=f32).astype(f64)
    cc = np.asarray(c, dtype=f32).astype(f64)
    with np.errstate(invalid="ignore", over="ignore"):
        s = p + cc
        bb = s - p
        err = (p - (s - bb)) + (cc - bb)
        bits = np.asarray(s).view(np.int64)
        nudge = np.isfinite(s) & (err != 0) & ((bits & 1) == 0)
        step = np.where(np.signbit(err) == np.signbit(s), 1, -1)
        odd = np.where(nudge, bits + step, bits).view(f64)
        return odd.astype(f32)


def _mul_add(a, b, c, fused: bool) -> np.ndarray:
    """a*b + c as the compiled code computes it: one fma, or a rounded product then a rounded sum."""
    if fused:
        return fma32(a, b, c)
    return (np.asarray(a, dtype=f32) * np.asarray(b, dtype=f32)) + np.asarray(c, dtype=f32)


def _check_libm(libm: str) -> bool:
    """Whether `libm` contracts multiply-adds; raises for an unknown name."""
    if libm not in LIBMS:
        raise HarnessError(f"unknown libm {libm!r}: use one of {', '.join(LIBMS)} (the chip's is {CHIP_LIBM})")
    return libm == CHIP_LIBM


def libm_for_target(target: str) -> str:
    """The libm variant the target's firmware links (the same newlib source and contraction on every target)."""
    check_target(target)
    return CHIP_LIBM


def _add_exponent(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """SET_FLOAT_WORD(y, hy + (k << 23)) on float32 words."""
    word = y.view(np.uint32).astype(np.int64) + (k.astype(np.int64) << 23)
    return (word & 0xFFFFFFFF).astype(np.uint32).view(f32)


def _expf_array(x: np.ndarray, fused: bool, tiny: int = _EXP_TINY) -> np.ndarray:
    """__ieee754_expf (ef_exp.c) on a float32 array; `fused` selects GCC's contracted form.

    `tiny`: the |x| word below which 1 + x is returned (0x34000000 on the chip; 0x31800000 in
    newlib <= 3.3.0, which gives another result for one argument, -1.5 * 2**-24).
    """
    x = np.ascontiguousarray(x, dtype=f32)
    sx = x.view(np.int32)
    hx = sx & 0x7FFFFFFF
    xsb = (sx >> 31) & 1
    one, two = f32(1.0), f32(2.0)
    with np.errstate(all="ignore"):
        big = hx > 0x3EB17218  # |x| > 0.5 ln2: reduce by k ln2
        near = big & (hx < 0x3F851592)  # ... and |x| < 1.5 ln2: k = +-1
        far = big & ~near
        # far: k = (int32)(invln2 * x + halF[xsb]), truncated toward zero (fcvt.w.s rtz)
        kf = _mul_add(x, _INVLN2, np.where(xsb == 1, _HALF[1], _HALF[0]), fused)
        k_far = np.trunc(np.where(far & (hx < 0x43000000), kf, f32(0))).astype(np.int32)
        t = k_far.astype(f32)
        hi_far = _mul_add(-t, _LN2HI[0], x, fused)  # x - t*ln2HI (t*ln2HI is exact: same either way)
        lo_far = t * _LN2LO[0]
        hi_near = x - np.where(xsb == 1, _LN2HI[1], _LN2HI[0])
        lo_near = np.where(xsb == 1, _LN2LO[1], _LN2LO[0])
        hi = np.where(near, hi_near, hi_far)
        lo = np.where(near, lo_near, lo_far)
        k = np.where(near, 1 - 2 * xsb, np.where(far, k_far, 0)).astype(np.int32)
        r = np.where(big, hi - lo, x)
        # polynomial: c = r - t*(P1+t*(P2+t*(P3+t*(P4+t*P5)))), t = r*r
        tt = r * r
        p = _mul_add(tt, _P5, _P4, fused)
        p = _mul_add(p, tt, _P3, fused)
        p = _mul_add(p, tt, _P2, fused)
        p = _mul_add(p, tt, _P1, fused)
        c = _mul_add(-p, tt, r, fused)
        rc = r * c
        y0 = one - ((rc / (c - two)) - r)  # k == 0
        y = one - ((lo - rc / (two - c)) - hi)
        scaled = np.where(k >= -125, _add_exponent(y, k), _add_exponent(y, k + 100) * _TWOM100)
        out = np.where(k == 0, y0, scaled)
        out = np.where(~big & (hx < tiny), one + x, out)
        out = np.where((sx < 0) & (hx > _EXP_LOG_MIN), f32(0.0), out)  # underflow
        out = np.where(sx > _EXP_LOG_MAX, f32(np.inf), out)  # overflow (also +inf)
        out = np.where(hx == 0x7F800000, np.where(xsb == 0, f32(np.inf), f32(0.0)), out)
    out = out.astype(f32)
    out.view(np.uint32)[hx > 0x7F800000] = CANONICAL_NAN
    return out


def _logf_array(x: np.ndarray, fused: bool) -> np.ndarray:
    """__ieee754_logf (ef_log.c) through the logf wrapper on a float32 array."""
    x = np.ascontiguousarray(x, dtype=f32)
    ix0 = x.view(np.int32)
    mag = ix0 & 0x7FFFFFFF
    zero = mag == 0
    subnormal = (mag < 0x00800000) & ~zero
    with np.errstate(all="ignore"):
        xs = np.where(subnormal, x * _TWO25, x)  # exact scaling of subnormals
        k = np.where(subnormal, -25, 0).astype(np.int32)
        ix = xs.view(np.int32)
        k = k + (ix >> 23) - 127
        ix = ix & 0x007FFFFF
        i = (ix + (0x95F64 << 3)) & 0x800000
        xn = (ix | (i ^ 0x3F800000)).astype(np.int32).view(f32)  # x or x/2 normalised into [sqrt(2)/2, sqrt(2)]
        k = k + (i >> 23)
        f = xn - f32(1.0)
        dk = k.astype(f32)
        k0 = k == 0
        # |f| < 2**-20
        tiny = (0x007FFFFF & (15 + ix)) < 16
        r_tiny = (f * f) * _mul_add(-f, _THIRD, f32(0.5), fused)
        y_tiny = np.where(
            k0, f - r_tiny, _mul_add(dk, _LN2_HI, -(_mul_add(-dk, _LN2_LO, r_tiny, fused) - f), fused)
        )
        y_exact = np.where(k0, f32(0.0), _mul_add(dk, _LN2_LO, dk * _LN2_HI, fused))  # f == 0
        y_tiny = np.where(f == 0, y_exact, y_tiny)
        # general case
        s = f / (f32(2.0) + f)
        z = s * s
        w = z * z
        lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG
        even = _mul_add(_mul_add(w, lg6, lg4, fused), w, lg2, fused)  # t1 = w * even
        odd = _mul_add(_mul_add(_mul_add(w, lg7, lg5, fused), w, lg3, fused), w, lg1, fused)
        t2 = z * odd
        rr = _mul_add(w, even, t2, fused)  # R = t2 + t1
        sel = ((ix - (0x6147A << 3)) | ((0x6B851 << 3) - ix)) > 0
        hfsq = (f32(0.5) * f) * f
        ps = s * (hfsq + rr)
        y_sel = np.where(
            k0, f - (hfsq - ps), _mul_add(dk, _LN2_HI, -((hfsq - _mul_add(dk, _LN2_LO, ps, fused)) - f), fused)
        )
        qs = s * (f - rr)
        y_rest = np.where(k0, f - qs, _mul_add(dk, _LN2_HI, -(_mul_add(-dk, _LN2_LO, qs, fused) - f), fused))
        out = np.where(tiny, y_tiny, np.where(sel, y_sel, y_rest))
        out = np.where(mag == 0x7F800000, x, out)  # +inf (negative inf is caught below)
        out = np.where(zero, f32(-np.inf), out)
    out = out.astype(f32)
    out.view(np.uint32)[((ix0 < 0) & ~zero) | (mag > 0x7F800000)] = CANONICAL_NAN
    return out


def _apply(fn, x, libm: str):
    fused = _check_libm(libm)
    arr = np.asarray(x, dtype=f32)
    out = fn(arr.reshape(-1), fused).reshape(arr.shape)
    return out[()] if out.ndim == 0 else out


def expf(x: np.ndarray | float, libm: str = CHIP_LIBM) -> np.ndarray | np.float32:
    """The chip's float32 expf, element-wise (a numpy float32 scalar for a scalar argument)."""
    return _apply(_expf_array, x, libm)


def logf(x: np.ndarray | float, libm: str = CHIP_LIBM) -> np.ndarray | np.float32:
    """The chip's float32 logf, element-wise (a numpy float32 scalar for a scalar argument)."""
    return _apply(_logf_array, x, libm)


def multiples(k: np.ndarray, exponent: int) -> np.ndarray:
    """The float32 arguments k * 2**exponent (exact for |k| < 2**24 within the float32 range)."""
    return np.asarray(k, dtype=f32) * f32(2.0**exponent)


@functools.lru_cache(maxsize=128)
def expf_table(exponent: int, libm: str = CHIP_LIBM) -> np.ndarray:
    """expf(k * 2**exponent) for k in [-255, 255], indexed by k + 255 (float32, read-only)."""
    table = expf(multiples(np.arange(-TABLE_RADIUS, TABLE_RADIUS + 1), exponent), libm)
    table.setflags(write=False)
    return table


def expf_of_multiples(k: np.ndarray, exponent: int, libm: str = CHIP_LIBM) -> np.ndarray:
    """expf(k * 2**exponent) element-wise for integer arrays `k` (float32 result)."""
    k = np.asarray(k, dtype=np.int64)
    if k.size == 0 or (k.min() >= -TABLE_RADIUS and k.max() <= TABLE_RADIUS):
        return expf_table(exponent, libm)[k + TABLE_RADIUS]
    return np.asarray(expf(multiples(k, exponent), libm), dtype=f32).reshape(k.shape)
