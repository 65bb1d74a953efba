"""The bundled fixture model through the whole host stack at 320 and 640 on esp32p4.

Three independent computations must agree bit for bit: the test values esp-ppq embedded in the
.espdl, the PPQ executor (the reference), and the integer emulator running the .espdl (the sim DUT's
engine) - on the embedded test input and on every fixture image.
"""

from __future__ import annotations

import numpy as np
import pytest

from host.espdl import Emulator, load, selftest
from host.espdl.check import check_file, errors
from host.hil.plugin import DEFAULT_IMAGES, test_images
from host.model import quantize_model
from host.reference.preprocess import load_image, preprocess
from host.reference.reference import simulator_for

pytestmark = pytest.mark.slow
OUTPUTS = ("box0", "score0", "box1", "score1", "box2", "score2")


@pytest.fixture(scope="module", params=[320, 640], ids=["320", "640"])
def quantized(request):
    model = quantize_model(None, target="esp32p4", imgsz=request.param)
    return model, load(model.espdl_path)


def test_pipeline_artifact_passes_espdl_check(quantized) -> None:
    model, _ = quantized
    assert errors(check_file(model.espdl_path, "esp32p4", model.espdl_version)) == []


def test_embedded_test_values_reproduce_in_ppq_and_in_the_emulator(quantized) -> None:
    model, espdl = quantized
    test_input = espdl.test_inputs[espdl.inputs[0].name].array.reshape(espdl.inputs[0].shape)
    raw = simulator_for(model.graph_path).run(test_input)
    for name in OUTPUTS:
        want = espdl.test_outputs[name].array.reshape(raw.tensors[name].shape)
        assert np.array_equal(raw.tensors[name], want), f"PPQ executor differs from the embedded {name}"
    assert selftest(espdl, "esp32p4", model.espdl_version).ok


def test_emulator_equals_ppq_executor_on_every_fixture_image(quantized) -> None:
    model, espdl = quantized
    simulator = simulator_for(model.graph_path)
    emulator = Emulator(espdl, target="esp32p4", espdl_version=model.espdl_version)
    for path in test_images(DEFAULT_IMAGES):
        tensor, _ = preprocess(load_image(path), model.imgsz, model.input_exponent, "esp32p4")
        ppq = simulator.run(tensor)
        emu = emulator.run({espdl.inputs[0].name: tensor})
        for name in OUTPUTS:
            assert np.array_equal(emu[name], ppq.tensors[name]), f"{path.name}: {name} differs"
