"""The PPQ simulation reproduces the int8 test values ESP-PPQ embedded in the .espdl, by name."""

from __future__ import annotations

import numpy as np
import pytest

from host.errors import HarnessError
from host.chip.detection import OUTPUT_NAMES
from host.chip.preprocess import preprocess


@pytest.fixture(scope="module")
def embedded(tiny_model):
    from host.espdl.model import load

    model = load(tiny_model.espdl_path)
    assert set(OUTPUT_NAMES) <= set(model.test_outputs), sorted(model.test_outputs)
    return model


def test_exponents_come_from_the_graph(tiny_simulator, embedded):
    assert tiny_simulator.input_exponent == embedded.info("images").exponent
    for name in OUTPUT_NAMES:
        assert tiny_simulator.output_exponents[name] == embedded.info(name).exponent, name


def test_embedded_input_is_our_preprocess(tiny_model, tiny_simulator, embedded):
    (test_input,) = embedded.test_inputs.values()
    ours, _ = preprocess(tiny_model.test_image, tiny_model.imgsz, tiny_simulator.input_exponent, tiny_model.target)
    np.testing.assert_array_equal(test_input.array.reshape(ours.shape), ours)


def test_simulated_outputs_equal_embedded_test_outputs(tiny_simulator, embedded):
    (test_input,) = embedded.test_inputs.values()
    raw = tiny_simulator.run(test_input.array.reshape(1, *tiny_simulator.imgsz, 3))
    for name in OUTPUT_NAMES:
        want = embedded.test_outputs[name]
        got = raw.tensors[name]
        assert got.dtype == np.int8
        assert raw.exponents[name] == want.exponents[0]
        np.testing.assert_array_equal(got, want.array.reshape(got.shape), err_msg=name)
        assert np.unique(got).size > 3, f"{name} is nearly constant: the fixture model is degenerate"


def test_float_reference_and_quantization_error(tiny_model, tiny_simulator):
    from host.reference.simulate import FloatReference, quantization_error

    q, _ = preprocess(tiny_model.test_image, tiny_model.imgsz, tiny_simulator.input_exponent, tiny_model.target)
    raw = tiny_simulator.run(q)
    ref = FloatReference(tiny_model.onnx_path).run(tiny_simulator.input_float(q))
    errors = quantization_error(raw, ref)
    assert set(errors) == set(OUTPUT_NAMES)
    for name, err in errors.items():
        assert ref[name].shape == raw.tensors[name].shape
        # int8 outputs of a working quantization track the float model; noise above signal means a layout bug.
        assert err.snr_db > 3.0, (name, err)
        assert err.max_abs >= err.mean_abs > 0.0  # int8 against float: never exactly equal


def test_quantization_error_is_zero_for_identical_values(tiny_simulator):
    from host.chip.pipeline import RawOutputs
    from host.reference.simulate import quantization_error

    t = {"box0": np.array([[[[3, -4]]]], dtype=np.int8)}
    raw = RawOutputs(tensors=t, exponents={"box0": -2})
    err = quantization_error(raw, {"box0": np.array([[[[0.75, -1.0]]]], dtype=np.float32)})["box0"]
    assert err.snr_db == float("inf") and err.max_abs == 0.0


def test_bad_inputs_to_the_simulator(tiny_simulator, tmp_path):
    from host.reference.simulate import PPQSimulator

    with pytest.raises(HarnessError, match="NHWC"):
        tiny_simulator.run(np.zeros((1, 3, 64, 64), dtype=np.int8))
    with pytest.raises(HarnessError, match="integer tensor from preprocess"):
        tiny_simulator.run(np.zeros((1, 64, 64, 3), dtype=np.float32))
    with pytest.raises(HarnessError, match="does not exist"):
        PPQSimulator(tmp_path / "missing.native")
