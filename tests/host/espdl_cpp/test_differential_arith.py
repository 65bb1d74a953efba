"""The arithmetic under both stages, esp-dl's C++ (host build) against host.chip, value for value.

The whole-stage tests see a float only after it is truncated to an integer; these compare the floats themselves:
dl::math::dfl_integral, sigmoid, inverse_sigmoid, dl::quantize/tool::round per chip, and the chip's expf/logf the
build links (also against the qemu-riscv32 oracle of newlib's own code). They also pin down what esp-dl's C
`round_half_even(float)` - the software fallback no chip runs - does differently from the chip's exact rounding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from host.chip import libm
from host.chip.postprocess import dfl_distances, inverse_sigmoid, sigmoid_of_quantized
from host.chip.preprocess import YOLO11_STD, preprocess as python_preprocess
from host.chip.rounding import inv_scale_of, quantize_float32, round_float32
from tests.host.espdl_cpp.conftest import TARGETS

f32 = np.float32
GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "libm" / "newlib_rv32imafc.json"


def words(hex_text: str) -> np.ndarray:
    return np.array([int(w, 16) for w in hex_text.split()], dtype=np.uint32)


def bits(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=f32).reshape(-1).view(np.uint32)


def near_ties(limit: int, ulps: int) -> np.ndarray:
    """Every float32 within `ulps` ulps of each tie k + 0.5, |k| < limit, and the ties themselves."""
    ties = (np.arange(-limit, limit) + 0.5).astype(f32)
    steps = np.arange(-ulps, ulps + 1)
    out = []
    for sign in (1, -1):
        t = ties[np.sign(ties) == sign]
        out.append((t.view(np.int32)[:, None] + steps[None, :]).astype(np.int32).view(f32).ravel())
    return np.concatenate(out)


def c_round_half_even(x: np.ndarray) -> np.ndarray:
    """esp-dl's C round_half_even(float) (dl_tool.cpp, the branch without CONFIG_PIE_V2_BOOST), in numpy float32."""
    x = np.asarray(x, dtype=f32)
    rounded = np.where(x < 0, x - f32(0.5), x + f32(0.5)).astype(f32)
    int_part = np.trunc(rounded).astype(np.int64)
    near = np.abs(rounded - int_part.astype(f32)).astype(np.float64) < 1e-6
    odd = (int_part & 1) != 0
    return np.where(near & odd, np.where(x < 0, int_part + 1, int_part - 1), int_part)


@pytest.mark.parametrize("exponent", [-10, -8, -6, -4, -3, -2, -1, 0, 1, 2, 4])
def test_dfl_integral_equals_espdl(espdl_cpp, exponent) -> None:
    """dl::math::dfl_integral (softmax with the chip's expf, then the expectation, as -ffast-math compiles it)."""
    rng = np.random.default_rng(exponent + 100)
    n = 20_000
    cases = [rng.integers(-128, 128, (n, 4, 16)), rng.integers(-32768, 32768, (n, 4, 16)),
             rng.integers(-600, 600, (n, 4, 16)),
             np.clip(rng.normal(0, 1, (n, 4, 16)) * 300, -32768, 32767).astype(np.int64)]
    for q in cases:
        ours = dfl_distances(q, exponent)
        theirs = espdl_cpp.api.dfl_integral(q.astype(f32) * f32(2.0 ** exponent), "esp32p4").reshape(-1, 4)
        differ = np.flatnonzero(bits(ours) != bits(theirs))
        assert differ.size == 0, (f"{differ.size} of {ours.size} distances differ, e.g. {ours.ravel()[differ[0]]!r} "
                                  f"!= esp-dl {theirs.ravel()[differ[0]]!r}")


def test_sigmoid_of_every_int8_and_many_int16_logits_equals_espdl(espdl_cpp) -> None:
    q8 = np.arange(-128, 128)
    q16 = np.unique(np.concatenate([np.arange(-2048, 2048), np.random.default_rng(1).integers(-32768, 32768, 20000)]))
    for exponent in range(-14, 5):
        for q in (q8, q16):
            ours = sigmoid_of_quantized(q, exponent)
            theirs = espdl_cpp.api.float_probe(espdl_cpp.api.SIGMOID, q.astype(f32) * f32(2.0 ** exponent))
            assert np.array_equal(bits(ours), bits(theirs)), exponent


def test_inverse_sigmoid_equals_espdl(espdl_cpp) -> None:
    rng = np.random.default_rng(2)
    thresholds = np.concatenate([np.arange(1, 1000) / 1000, rng.uniform(0, 1, 1000), [1e-7, 1e-3, 0.25, 0.5, 0.7,
                                                                                          1 - 1e-7]]).astype(f32)
    thresholds = thresholds[(thresholds > 0) & (thresholds < 1)]
    ours = np.array([inverse_sigmoid(float(t)) for t in thresholds], dtype=f32)
    theirs = espdl_cpp.api.float_probe(espdl_cpp.api.INVERSE_SIGMOID, thresholds)
    assert np.array_equal(bits(ours), bits(theirs))


@pytest.mark.parametrize("target", TARGETS)
def test_rounding_and_quantize_equal_espdl(espdl_cpp, target) -> None:
    """dl::tool::round<float> and dl::quantize<int8_t/int16_t> of the target's build, at and around every tie and
    on random values (P4: fcvt.w.s rne; S3: (int)floorf(v + 0.5))."""
    api = espdl_cpp.api
    values = np.concatenate([near_ties(300, 40), near_ties(40_000, 2),
                             np.random.default_rng(3).uniform(-1e6, 1e6, 200_000).astype(f32),
                             np.array([0.0, -0.0, 0.49999997, -0.49999997, 8388609.0, -8388609.0], dtype=f32)])
    assert np.array_equal(api.int_probe(api.ROUND, values, target), round_float32(values, target))
    for exponent in (-10, -7, -2, 0, 3):
        inv = inv_scale_of(exponent)
        x = values / f32(2.0 ** -exponent)
        for bits_, what in ((8, api.QUANTIZE8), (16, api.QUANTIZE16)):
            ours = quantize_float32(x, inv, target, bits=bits_)
            assert np.array_equal(api.int_probe(what, x, target, arg=inv), ours), (exponent, bits_)


@pytest.mark.parametrize("target", TARGETS)
def test_input_quantization_tables_equal_espdl(espdl_cpp, target) -> None:
    """NormQuant's table (v * (1/255)) quantized per exponent: one image row holding all 256 values."""
    image = np.repeat(np.arange(256, dtype=np.uint8), 3).reshape(1, 256, 3)
    for exponent in range(-24, 25):
        for bits_ in (8, 16):
            ours, _ = python_preprocess(image, (1, 256), exponent, target, bits=bits_)
            theirs, _ = espdl_cpp.preprocess(image, (1, 256), exponent, target, bits=bits_)
            assert np.array_equal(ours, theirs), (exponent, bits_)
    assert YOLO11_STD == (255.0, 255.0, 255.0)


def test_the_chip_libm_in_the_build_matches_the_oracle_and_host_chip(espdl_cpp) -> None:
    """hil_chip.c (linked in place of glibc's expf/logf) against the qemu-riscv32 run of newlib's own code."""
    api = espdl_cpp.api
    golden = json.loads(GOLDEN.read_text())
    for op, what, model in (("expf", api.EXPF, libm.expf), ("logf", api.LOGF, libm.logf)):
        args = words(golden[f"{op}_sample"]["args"]).view(f32)
        got = bits(api.float_probe(what, args))
        want = words(golden[f"{op}_sample"]["values"])
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, [(hex(bits(args[i])[0]), hex(want[i]), hex(got[i])) for i in bad[:5]]
        rand = np.random.default_rng(4).integers(0, 2**32, 1_000_000, dtype=np.uint64).astype(np.uint32).view(f32)
        assert np.array_equal(bits(api.float_probe(what, rand)), bits(model(rand))), op
    args = words(golden["logf_inverse_sigmoid"]["args"]).view(f32)
    assert np.array_equal(bits(api.float_probe(api.LOGF, args)), words(golden["logf_inverse_sigmoid"]["values"]))
    for e, row in golden["expf_multiples"]["values"].items():
        k = np.arange(-255, 256).astype(f32) * f32(2.0 ** int(e))
        assert np.array_equal(bits(api.float_probe(api.EXPF, k)), words(row)), e


def test_espdl_c_round_half_even_is_only_approximately_half_even(espdl_cpp) -> None:
    """esp-dl's C `round_half_even(float)` (dl_tool.cpp, compiled when CONFIG_PIE_V2_BOOST is 0: no chip that rounds
    half to even runs it, the P4/S31 run `fcvt.w.s rne`) against the exact rule:
    - it treats values up to ~1e-6 beyond a tie as the tie (`fabsf(rounded - int_part) < 1e-6`), so such a value
      whose even neighbour lies toward zero is rounded toward zero: -2.5000002 -> -2, 0.50000006 -> 0;
    - `value +/- 0.5f` is rounded to float first, so odd integers in [2**23, 2**24) come out one further from 0.
    Exact ties and everything else agree; after int8/int16 clipping the image tables and the score thresholds of
    this pipeline are the same either way. The P4 build (fcvt.w.s model) equals the exact rule everywhere."""
    api = espdl_cpp.api
    values = np.concatenate([near_ties(300, 40), np.random.default_rng(5).uniform(-1e4, 1e4, 500_000).astype(f32),
                             (np.arange(2**23 - 64, 2**23 + 64)).astype(f32),
                             (np.arange(2**24 - 8, 2**24 + 8)).astype(f32)])
    exact = round_float32(values, "esp32p4")
    assert np.array_equal(api.int_probe(api.ROUND_HALF_EVEN, values, "esp32p4"), exact)
    c_code = api.int_probe(api.ROUND_HALF_EVEN, values, "esp32s3")  # the S3 build keeps esp-dl's C code
    assert np.array_equal(c_code, c_round_half_even(values))  # it is that code
    differ = c_code != exact
    magnitude = np.abs(values.astype(np.float64))
    fraction = magnitude - np.floor(magnitude)
    just_beyond_a_tie = (fraction > 0.5) & (fraction <= 0.5 + 1.1e-6) & (magnitude < 16)
    odd_above_2_23 = (magnitude >= 2**23) & (magnitude < 2**24) & (magnitude % 2 == 1)
    assert not (differ & ~(just_beyond_a_tie | odd_above_2_23)).any(), values[differ & ~just_beyond_a_tie][:10]
    assert differ[just_beyond_a_tie].sum() > 0 and differ[odd_above_2_23].all()
    assert np.all(np.abs(c_code[differ] - exact[differ]) == 1)
    # What it would change in this pipeline: nothing, after clipping.
    for exponent in range(-24, 25):
        table = np.arange(256, dtype=f32) * (f32(1) / f32(255)) * inv_scale_of(exponent)
        for lo, hi in ((-128, 127), (-32768, 32767)):
            assert np.array_equal(np.clip(api.int_probe(api.ROUND_HALF_EVEN, table, "esp32s3"), lo, hi),
                                  np.clip(round_float32(table, "esp32p4"), lo, hi)), exponent
    logits = api.float_probe(api.INVERSE_SIGMOID, (np.arange(1, 10000) / 10000).astype(f32))
    for exponent in range(-16, 9):
        x = logits * inv_scale_of(exponent)
        assert np.array_equal(api.int_probe(api.ROUND_HALF_EVEN, x, "esp32s3"), round_float32(x, "esp32p4"))
