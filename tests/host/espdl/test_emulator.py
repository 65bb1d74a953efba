"""The emulator reproduces the test outputs esp-ppq embeds in each exported model, exactly.

One small model per operator family, quantized for ESP32-P4 (round half to even, per-channel weight
exponents) and ESP32-S3 (round half up); int16 layers too. ESP-PPQ's simulation produced the embedded
outputs, so an exact match shows both implementations agree on every rounding of the graph.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from host.errors import HarnessError
from host.espdl import Emulator, first_divergence, load, selftest
from host.espdl.ops import OPS, UnsupportedOp

FAMILIES = ["conv", "lut", "eltwise", "pool", "attention", "shape", "misc"]
TARGETS = ["esp32p4", "esp32s3"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_int8_outputs_match_embedded_test_values(quantized, family, target):
    model = load(quantized.get(family, target))
    # esp-ppq 1.3.12 writes native_kn MatMuls, which only an esp-dl that reads the attribute runs as meant
    result = selftest(model, target, espdl_version="native")
    assert result.ok, [(o.name, o.mismatches, o.max_abs_diff) for o in result.outputs]


@pytest.mark.parametrize("family", ["conv", "eltwise", "pool"])
def test_rounding_mode_of_the_other_chip_breaks_exactness(quantized, family):
    """The rounding mode is exercised: the P4 model emulated with S3 rounding no longer matches."""
    model = load(quantized.get(family, "esp32p4"))
    assert not selftest(model, "esp32s3", espdl_version="native").ok


@pytest.mark.parametrize("target", TARGETS)
def test_espdl_339_reads_native_kn_operand_as_packed(quantized, target):
    """esp-ppq 1.3.12 marks activation x activation MatMuls native_kn; esp-dl 3.3.9 ignores it."""
    model = load(quantized.get("attention", target))
    layouts = {n.attributes.get("input1_layout") for n in model.nodes if n.op_type == "MatMul"}
    assert layouts == {"native_kn"}
    skewed = selftest(model, target, espdl_version="3.3.9")
    assert not skewed.ok and skewed.outputs[0].mismatches > 100
    em = Emulator(model, target, "3.3.9")
    em.run({"x": model.test_inputs["x"].array})
    assert any("native_kn" in note for note in em.notes.values())
    assert selftest(model, target, espdl_version="native").ok


@pytest.mark.parametrize("target", TARGETS)
def test_int16_lut_layers_are_exact(quantized, target):
    """Whole-model int16: esp-ppq simulates esp-dl's step-32 nearest-neighbour LUT, exactly as emulated."""
    model = load(quantized.get("lut", target, bits=16))
    assert {n.op_type for n in model.nodes if "lut" in n.attributes} == {"LUT"}
    assert selftest(model, target, espdl_version="native").ok


def _direct_conv_int64(x, w, b, pads):
    """A plain integer convolution, independent of the emulator's float path."""
    top, left, bottom, right = pads
    xp = np.pad(x.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw, _, n = w.shape
    oh, ow = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
    acc = np.zeros((1, oh, ow, n), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            acc += np.einsum("bhwc,cn->bhwn", xp[:, i:i + oh, j:j + ow, :], w[i, j].astype(np.int64))
    return acc + b.astype(np.int64)


@pytest.mark.parametrize("target", TARGETS)
def test_int16_conv_is_exact_where_ppq_is_within_one(quantized, target):
    """int16 products reach 2^30: ESP-PPQ's float32 simulation is then off by one now and then (esp-dl's
    own test allows +-1). The emulator is checked against exact integer arithmetic instead."""
    model = load(quantized.get("conv", target, bits=16))
    result = selftest(model, target, espdl_version="native", int16_tolerance=1)
    assert result.ok
    em = Emulator(model, target, "native")
    x = model.test_inputs["x"].array
    got = em.run({"x": x}, outputs=["r1"])["r1"]
    w, b = model.initializers["w1"], model.initializers["b1"]
    acc = _direct_conv_int64(x, w.array, b.array, [1, 1, 1, 1])
    shift = em.exponent("r1") - em.exponent("x") - np.asarray(w.exponents)
    exact = acc * np.exp2(-shift.astype(np.float64))  # exact: |acc| < 2^53
    rounded = np.rint(exact) if target == "esp32p4" else np.floor(exact + 0.5)
    assert np.array_equal(np.clip(np.maximum(rounded, 0), -32768, 32767), got)


def test_mixed_int16_activation_lut_disagrees_with_esp_ppq_simulation(quantized):
    """Mixed precision (int16 ops on an int8 model): esp-ppq exports a step-256 LUT for an int16 Swish but
    simulates the ideal function, so the device (and the emulator) miss the embedded test values. A mixed
    preset must keep activations int8 or the self-test on the board fails."""
    model = load(quantized.get("lut", "esp32p4", int16_ops=("conv1", "conv1/Swish")))
    swish = next(n for n in model.nodes if n.name == "conv1/Swish")
    assert swish.attributes["quant_type"] == "S16" and model.initializers[swish.attributes["lut"]].array.size == 257
    assert not selftest(model, "esp32p4", espdl_version="native", int16_tolerance=1).ok


@pytest.fixture(scope="module")
def eltwise(quantized):
    model = load(quantized.get("eltwise", "esp32p4"))
    return model, Emulator(model, "esp32p4", "native"), model.test_inputs["x"].array


def test_run_to_a_named_stage(eltwise):
    model, em, x = eltwise
    full = em.run({"x": x}, keep_all=True)
    assert set(full) >= {"x", "c1", "s1", "s2", "a", "m", "y"}
    partial = em.run({"x": x}, outputs=["a"])
    assert list(partial) == ["a"] and np.array_equal(partial["a"], full["a"])
    assert partial.exponents["a"] == model.info("a").exponent
    assert np.array_equal(em.run({"x": x})["y"], model.test_outputs["y"].array)


def test_first_divergence_names_the_earliest_tensor(eltwise):
    _, em, x = eltwise
    a = em.run({"x": x}, keep_all=True)
    assert first_divergence(a, dict(a), em.tensor_order()) is None
    b = dict(a)
    for name in ("m", "c2"):
        b[name] = a[name].copy()
        b[name].flat[3] += 1
    d = first_divergence(a, b, em.tensor_order())
    order = em.tensor_order()
    assert d.name == min(("m", "c2"), key=order.index) and d.mismatches == 1 and d.max_abs_diff == 1
    b2 = dict(a, y=a["y"].reshape(-1))
    assert "shape" in first_divergence(a, b2, order).reason


def test_unsupported_op_and_attribute_name_the_node(eltwise):
    model, _, x = eltwise
    nodes = [dataclasses.replace(n) for n in model.nodes]
    nodes[0] = dataclasses.replace(nodes[0], op_type="GridSample")
    with pytest.raises(UnsupportedOp, match="conv1.*GridSample"):
        Emulator(dataclasses.replace(model, nodes=nodes))
    nodes = [dataclasses.replace(n, attributes=dict(n.attributes)) for n in model.nodes]
    nodes[0].attributes["activation"] = "PRelu"
    with pytest.raises(UnsupportedOp, match="'conv1'.*PRelu"):
        Emulator(dataclasses.replace(model, nodes=nodes)).run({"x": x})


def test_bad_inputs_are_refused(eltwise):
    _, em, x = eltwise
    with pytest.raises(HarnessError, match="missing input 'x'"):
        em.run({})
    with pytest.raises(HarnessError, match="shape"):
        em.run({"x": x[:, :4]})
    with pytest.raises(HarnessError, match="int8"):
        em.run({"x": x.astype(np.float32)})
    with pytest.raises(HarnessError, match="no tensor named"):
        em.run({"x": x}, outputs=["nope"])
    with pytest.raises(HarnessError, match="esp-dl '9.9.9'"):
        Emulator(em.model, espdl_version="9.9.9")


def test_average_over_a_non_power_of_two_area_is_refused(quantized):
    """esp-dl's SIMD kernels use a rounded integer reciprocal there; the emulator refuses rather than guess."""
    model = load(quantized.get("misc", "esp32p4"))
    em = Emulator(model, "esp32p4")
    gap = next(n for n in model.nodes if n.op_type == "GlobalAveragePool")
    x = np.ones((1, 3, 5, 24), dtype=np.int8)  # a 3x5 map: 15 cells
    with pytest.raises(UnsupportedOp, match="'gap'.*15 cells"):
        OPS["GlobalAveragePool"](em, gap, [x])
    y = OPS["GlobalAveragePool"](em, gap, [np.full((1, 4, 4, 24), 8, dtype=np.int8)])[0]
    shift = em.exponent(gap.outputs[0]) - em.exponent(gap.inputs[0])
    assert y.shape == (1, 1, 1, 24) and np.all(y == np.clip(np.rint(8 * 2.0 ** -shift), -128, 127))


@pytest.mark.parametrize("target", TARGETS)
def test_huge_bias_takes_the_exact_float64_path(quantized, target):
    """A dead channel's bias near -2^31 (seen in Espressif's P4 YOLO11n) must not cost exactness."""
    model = load(quantized.get("conv", target))
    b1 = model.initializers["b1"]
    big = b1.array.astype(np.int64).copy()
    big[::3] = [-(2**31) + 12345, 2**30 + 3, -(2**29) - 1, 2**31 - 7, -5, 2**28 + 1, -(2**30), 99][: big[::3].size]
    model.initializers["b1"] = dataclasses.replace(b1, array=big.astype(np.int32))
    em = Emulator(model, target, "native")
    x = model.test_inputs["x"].array
    got = em.run({"x": x}, outputs=["r1"])["r1"]
    w = model.initializers["w1"]
    acc = _direct_conv_int64(x, w.array, big, [1, 1, 1, 1])
    shift = em.exponent("r1") - em.exponent("x") - np.asarray(w.exponents)
    exact = acc * np.exp2(-shift.astype(np.float64))
    rounded = np.rint(exact) if target == "esp32p4" else np.floor(exact + 0.5)
    assert np.array_equal(np.clip(np.maximum(rounded, 0), -128, 127), got)
