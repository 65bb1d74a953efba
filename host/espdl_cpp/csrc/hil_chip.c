/* The chip's float routines for the host build of esp-dl's pre/postprocess (declared in hil_chip.h).
 *
 * expf/logf: Sun fdlibm's float routines as Espressif's newlib (esp-4.3.0, __OBSOLETE_MATH 1 on RISC-V and
 * Xtensa) ships them in libm/math/ef_exp.c and ef_log.c behind the wf_exp.c/wf_log.c wrappers, written
 * here operation for operation in float32. GCC 12 for rv32imafc at -O2/-Os fuses 12 multiply-adds in
 * expf and 14 in logf; those are the explicit fmaf() calls below, every other operation is rounded on its
 * own. This file is compiled with -ffp-contract=off and without -ffast-math, so the compiler adds or
 * removes nothing. host/chip/libm.py is the numpy transcription of the same routines; both are checked
 * against the qemu-riscv32 oracle in fixtures/libm/newlib_rv32imafc.json (tests/host/espdl_cpp).
 *
 * The constants are the fdlibm bit patterns (given as hex words, as the fdlibm comments list them).
 */
#include "hil_chip.h"

#include <math.h>
#include <string.h>

static float from_word(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static uint32_t word_of(float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
}

#define CANONICAL_NAN 0x7fc00000u /* RISC-V F returns the canonical NaN from every NaN-producing operation */

float hil_expf(float x)
{
    const float one = 1.0f, two = 2.0f;
    const float half[2] = {from_word(0x3f000000u), from_word(0xbf000000u)};
    const float ln2hi[2] = {from_word(0x3f317180u), from_word(0xbf317180u)};
    const float ln2lo[2] = {from_word(0x3717f7d1u), from_word(0xb717f7d1u)};
    const float invln2 = from_word(0x3fb8aa3bu);
    const float p1 = from_word(0x3e2aaaabu), p2 = from_word(0xbb360b61u), p3 = from_word(0x388ab355u),
                p4 = from_word(0xb5ddea0eu), p5 = from_word(0x3331bb4cu);
    const float twom100 = from_word(0x0d800000u);

    int32_t sx = (int32_t)word_of(x);
    int xsb = (sx >> 31) & 1;
    uint32_t hx = (uint32_t)sx & 0x7fffffffu;
    float hi = 0.0f, lo = 0.0f, c, t, y;
    int32_t k = 0;

    if (hx > 0x7f800000u) return from_word(CANONICAL_NAN);
    if (hx == 0x7f800000u) return xsb == 0 ? x : 0.0f;
    if (sx > 0x42b17217) return from_word(0x7f800000u);          /* overflow */
    if (sx < 0 && hx > 0x42cff1b5u) return 0.0f;                 /* underflow */

    if (hx > 0x3eb17218u) {            /* |x| > 0.5 ln2 */
        if (hx < 0x3f851592u) {        /* and |x| < 1.5 ln2 */
            hi = x - ln2hi[xsb];
            lo = ln2lo[xsb];
            k = 1 - xsb - xsb;
        } else {
            k = (int32_t)fmaf(invln2, x, half[xsb]);  /* fused; the conversion truncates (fcvt.w.s rtz) */
            t = (float)k;
            hi = fmaf(-t, ln2hi[0], x);               /* x - t*ln2HI, fused (t*ln2HI is exact anyway) */
            lo = t * ln2lo[0];
        }
        x = hi - lo;
    } else if (hx < 0x34000000u) {     /* |x| < 2**-23 */
        return one + x;
    }

    t = x * x;
    c = fmaf(t, p5, p4);
    c = fmaf(c, t, p3);
    c = fmaf(c, t, p2);
    c = fmaf(c, t, p1);
    c = fmaf(-c, t, x);                /* x - t*(P1+...) */
    if (k == 0) return one - ((x * c) / (c - two) - x);
    y = one - ((lo - (x * c) / (two - c)) - hi);
    if (k >= -125) return from_word(word_of(y) + ((uint32_t)k << 23));
    return from_word(word_of(y) + ((uint32_t)(k + 100) << 23)) * twom100;
}

float hil_logf(float x)
{
    const float ln2_hi = from_word(0x3f317180u), ln2_lo = from_word(0x3717f7d1u), two25 = from_word(0x4c000000u);
    const float third = from_word(0x3eaaaaabu); /* (float)0.33333333333333333 */
    const float lg1 = from_word(0x3f2aaaabu), lg2 = from_word(0x3ecccccdu), lg3 = from_word(0x3e924925u),
                lg4 = from_word(0x3e638e29u), lg5 = from_word(0x3e3a3325u), lg6 = from_word(0x3e1cd04fu),
                lg7 = from_word(0x3e178897u);
    float hfsq, f, s, z, r, w, t1, t2, dk, even, odd;
    int32_t k = 0, ix, i, j;

    ix = (int32_t)word_of(x);
    if ((ix & 0x7fffffff) == 0) return -INFINITY;                 /* log(+-0) */
    if (ix < 0) return from_word(CANONICAL_NAN);                   /* log(negative) */
    if (ix >= 0x7f800000) return ix == 0x7f800000 ? x : from_word(CANONICAL_NAN);
    if (ix < 0x00800000) {                                          /* subnormal: scale up */
        k -= 25;
        x *= two25;
        ix = (int32_t)word_of(x);
    }
    k += (ix >> 23) - 127;
    ix &= 0x007fffff;
    i = (ix + (0x95f64 << 3)) & 0x800000;
    x = from_word((uint32_t)(ix | (i ^ 0x3f800000)));              /* normalize x or x/2 */
    k += (i >> 23);
    f = x - 1.0f;
    if ((0x007fffff & (15 + ix)) < 16) {                            /* |f| < 2**-20 */
        if (f == 0.0f) {
            if (k == 0) return 0.0f;
            dk = (float)k;
            return fmaf(dk, ln2_lo, dk * ln2_hi);
        }
        r = (f * f) * fmaf(-f, third, 0.5f);
        if (k == 0) return f - r;
        dk = (float)k;
        return fmaf(dk, ln2_hi, -(fmaf(-dk, ln2_lo, r) - f));
    }
    s = f / (2.0f + f);
    dk = (float)k;
    z = s * s;
    i = ix - (0x6147a << 3);
    w = z * z;
    j = (0x6b851 << 3) - ix;
    even = fmaf(fmaf(w, lg6, lg4), w, lg2);               /* t1 = w * even */
    odd = fmaf(fmaf(fmaf(w, lg7, lg5), w, lg3), w, lg1);  /* t2 = z * odd */
    t1 = w * even;
    (void)t1;
    t2 = z * odd;
    r = fmaf(w, even, t2);                                /* R = t2 + t1, fused as w*even + t2 */
    i |= j;
    if (i > 0) {
        hfsq = (0.5f * f) * f;
        if (k == 0) return f - (hfsq - s * (hfsq + r));
        return fmaf(dk, ln2_hi, -((hfsq - fmaf(dk, ln2_lo, s * (hfsq + r))) - f));
    }
    if (k == 0) return f - s * (f - r);
    return fmaf(dk, ln2_hi, -(fmaf(-dk, ln2_lo, s * (f - r)) - f));
}

int32_t hil_fcvt_w_s_rne(float x)
{
    if (x != x) return INT32_MAX;                       /* NaN */
    if (x >= 2147483648.0f) return INT32_MAX;           /* saturate, as fcvt.w.s does */
    if (x < -2147483648.0f) return INT32_MIN;
    return (int32_t)nearbyintf(x);                      /* default rounding mode: to nearest, ties to even */
}
