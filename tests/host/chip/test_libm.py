"""The chip's expf/logf model: bit-exact against the qemu oracle's golden file; the exact float32 fma."""

from __future__ import annotations

import json
import math
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.errors import HarnessError
from host.chip import libm
from host.chip.targets import HALF_EVEN

f32 = np.float32
GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "libm" / "newlib_rv32imafc.json"


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


def words(hex_text: str) -> np.ndarray:
    return np.array([int(w, 16) for w in hex_text.split()], dtype=np.uint32)


def bits(x) -> np.ndarray:
    return np.asarray(x, dtype=f32).reshape(-1).view(np.uint32)


def test_golden_file_comes_from_the_fused_rv32imafc_build(golden):
    prov = golden["provenance"]
    assert "-march=rv32imafc" in prov["cflags"] and "-mabi=ilp32f" in prov["cflags"]
    assert prov["fused_multiply_adds"]["__ieee754_expf"] > 0 and prov["fused_multiply_adds"]["__ieee754_logf"] > 0


def test_expf_tables_match_the_oracle_bit_for_bit(golden):
    lo, hi = golden["expf_multiples"]["k"]
    assert (lo, hi) == (-libm.TABLE_RADIUS, libm.TABLE_RADIUS)
    rows = golden["expf_multiples"]["values"]
    assert sorted(int(e) for e in rows) == list(range(-16, 5))
    for e, row in rows.items():
        np.testing.assert_array_equal(bits(libm.expf_table(int(e))), words(row), err_msg=f"exponent {e}")


def test_expf_of_multiples_agrees_with_the_table_and_with_expf():
    k = np.array([[-255, 0, 3], [255, -1, 7]])
    np.testing.assert_array_equal(bits(libm.expf_of_multiples(k, -4)), bits(libm.expf_table(-4)[k + 255]))
    wide = np.array([-3000, -256, 256, 1000])  # int16 differences: computed directly
    np.testing.assert_array_equal(
        bits(libm.expf_of_multiples(wide, -8)), bits([libm.expf(f32(v) * f32(2.0**-8)) for v in wide])
    )
    assert libm.expf_of_multiples(np.zeros((0, 16), dtype=np.int64), -3).shape == (0, 16)


def test_logf_matches_the_oracle_on_inverse_sigmoid_arguments(golden):
    part = golden["logf_inverse_sigmoid"]
    args = words(part["args"]).view(f32)
    assert args.size == 9999
    np.testing.assert_array_equal(bits(libm.logf(args)), words(part["values"]))


@pytest.mark.parametrize("op", ["expf", "logf"])
def test_model_matches_the_oracle_on_special_and_random_arguments(golden, op):
    part = golden[f"{op}_sample"]
    args = words(part["args"]).view(f32)
    assert args.size > 4000
    got = bits(getattr(libm, op)(args))
    want = words(part["values"])
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(hex(bits(args[i])[0]), hex(want[i]), hex(got[i])) for i in bad[:5]]


def test_scalars_stay_scalars_and_nans_are_canonical():
    assert isinstance(libm.expf(0.5), np.float32) and isinstance(libm.logf(2.0), np.float32)
    assert libm.expf(0.0) == 1.0 and libm.logf(1.0) == 0.0
    assert bits(libm.logf(-1.0))[0] == libm.CANONICAL_NAN and bits(libm.expf(np.nan))[0] == libm.CANONICAL_NAN
    assert libm.logf(0.0) == -np.inf and libm.expf(-np.inf) == 0.0 and libm.expf(100.0) == np.inf


def test_the_contracted_and_plain_builds_are_different_functions():
    """The fma variant is not a no-op: over a spread of arguments some results differ from the plain build."""
    x = np.linspace(-80, 80, 200_001, dtype=f32)
    assert (bits(libm.expf(x)) != bits(libm.expf(x, "newlib-fdlibm"))).any()


def test_libm_names_and_targets():
    for target in HALF_EVEN:
        assert libm.libm_for_target(target) == libm.CHIP_LIBM
    with pytest.raises(HarnessError, match="unknown target"):
        libm.libm_for_target("esp8266")
    with pytest.raises(HarnessError, match="unknown libm 'glibc'"):
        libm.expf(1.0, "glibc")


# --- the exact fma -------------------------------------------------------------------------------

FLT_MAX = Fraction(float(np.finfo(f32).max))
OVERFLOW = FLT_MAX + Fraction(2) ** 103  # halfway between FLT_MAX and 2**128 (ties go to infinity)


def round_to_float32(q: Fraction) -> np.float32:
    """Correct rounding (nearest, ties to even) of an exact rational to float32."""
    if abs(q) >= OVERFLOW:
        return f32(math.copysign(math.inf, q))
    with np.errstate(over="ignore"):
        guess = f32(float(q))  # within one float32 ulp of the answer
    with np.errstate(over="ignore"):
        candidates = [np.nextafter(guess, f32(-np.inf)), guess, np.nextafter(guess, f32(np.inf))]
    candidates = [c for c in candidates if np.isfinite(c)]
    best = min(abs(Fraction(float(c)) - q) for c in candidates)
    ties = [c for c in candidates if abs(Fraction(float(c)) - q) == best]
    if len(ties) > 1:
        ties = [c for c in ties if bits(c)[0] % 2 == 0]
    return ties[0]


def exact_fma(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    q = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    if q == 0:  # the sign of an exact zero: +0 unless both addends are -0 (round to nearest)
        return f32(-0.0) if (np.signbit(a * b) and np.signbit(c)) else f32(0.0)
    return round_to_float32(q)


floats32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def near_midpoint(draw):
    """a*b exactly a float32 midpoint (an odd 25-bit integer times a power of two), c tiny beside it.

    When c is below the float64 precision of the product the float64 sum lands on the midpoint and
    rounding it again to float32 goes the wrong way half of the time: the double rounding case.
    """
    p = 2 * draw(st.integers(2**11, 2**12 - 1)) + 1  # odd, 13 bits
    lo, hi = -(-(2**24) // p), (2**25 - 1) // p
    q = draw(st.integers(lo, hi).filter(lambda v: v % 2 == 1))  # p * q: odd, in [2**24, 2**25)
    shift = draw(st.integers(-60, 40))
    a = f32(math.ldexp(p, shift)) * f32(draw(st.sampled_from([1.0, -1.0])))
    b = f32(math.ldexp(q, -20))
    exponent = shift - 20 - draw(st.integers(2, 90))  # c's scale below the product's last bit
    c = f32(math.ldexp(draw(st.floats(-1.0, 1.0, width=32)), exponent))
    return a, b, c


@settings(max_examples=400, deadline=None)
@given(floats32, floats32, floats32)
def test_fma32_is_one_rounding_of_the_exact_value(a, b, c):
    a, b, c = f32(a), f32(b), f32(c)
    got = libm.fma32(a, b, c)
    want = exact_fma(a, b, c)
    assert bits(got)[0] == bits(want)[0], (a, b, c, got, want)


@settings(max_examples=400, deadline=None)
@given(near_midpoint())
def test_fma32_near_float32_midpoints(abc):
    a, b, c = abc
    assert bits(libm.fma32(a, b, c))[0] == bits(exact_fma(a, b, c))[0], abc


def test_fma32_avoids_double_rounding():
    """(1 + 2**-12)**2 + 2**-80 lies just above a float32 midpoint; the float64 sum lands exactly on it."""
    a = b = f32(1 + 2.0**-12)
    for tiny, want in ((2.0**-80, 1 + 2.0**-11 + 2.0**-23), (-(2.0**-80), 1 + 2.0**-11)):
        c = f32(tiny)
        naive = f32(float(a) * float(b) + float(c))
        assert naive == f32(1 + 2.0**-11)  # double rounding: ties to even from the exact midpoint
        assert libm.fma32(a, b, c) == f32(want) == exact_fma(a, b, c)


def test_fma32_is_vectorised_and_handles_subnormal_results():
    a = np.array([2.0**-75, 3.0, 1e30], dtype=f32)
    b = np.array([2.0**-70, 5.0, 1e30], dtype=f32)
    c = np.array([2.0**-149, -15.0, 0.0], dtype=f32)
    got = libm.fma32(a, b, c)
    assert [bits(g)[0] for g in got] == [bits(exact_fma(*t))[0] for t in zip(a, b, c)]
    assert got[1] == 0.0 and np.isinf(got[2])


# --- the oracle itself, where its toolchain is installed -----------------------------------------


def test_the_qemu_oracle_agrees_with_the_model(tmp_path):
    """Builds newlib's routines for rv32imafc and runs them in qemu (Debian packages; skipped without them)."""
    from tools import check_device_libm as tool

    lacking = tool.missing_tools() + ([] if tool.DEBIAN_TARBALL.is_file() else [str(tool.DEBIAN_TARBALL)])
    if lacking or shutil.which("riscv64-unknown-elf-objdump") is None:
        pytest.skip(f"qemu oracle needs the Debian packages {tool.PACKAGES} ({', '.join(lacking)} missing)")
    files, _ = tool.newlib_from_tarball(tool.DEBIAN_TARBALL)
    elf, _ = tool.build_oracle(files, tmp_path, "-O2")
    tiny = 0x31800000  # newlib 3.3.0's small-argument bound
    for op, args in (
        ("expf", np.concatenate([tool.expf_multiples_args(), tool.random_args("expf", 20_000, 7)])),
        ("logf", np.concatenate([tool.inverse_sigmoid_args(), tool.random_args("logf", 20_000, 8)])),
    ):
        got = tool.model(op, args, True, tiny)
        np.testing.assert_array_equal(bits(got), bits(tool.run_oracle(elf, op, args)), err_msg=op)
