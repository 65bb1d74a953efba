"""A whole YOLO11n through the harness pipeline: the emulator reproduces esp-ppq's embedded test outputs
exactly, and every intermediate tensor of ESP-PPQ's executor. Quantization is cached by the model
pipeline (host.model), so only a cold cache pays for it."""

from __future__ import annotations

import numpy as np
import pytest

from host.espdl import Emulator, first_divergence, in_espdl_layout, load, selftest
from tests.host.builders import export_random_yolo11n, write_calibration_images

pytestmark = pytest.mark.slow
IMGSZ = 320


@pytest.fixture(scope="session")
def yolo_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("yolo11n")
    calib = write_calibration_images(root / "calib")
    onnx_path = export_random_yolo11n(root / "yolo11n_random.onnx", IMGSZ)
    return onnx_path, calib


def _quantize(yolo_inputs, target: str, preset: str):
    from host.model.quantize import quantize_model

    onnx_path, calib = yolo_inputs
    return quantize_model(str(onnx_path), target=target, imgsz=IMGSZ, preset=preset, calib_dir=calib)


@pytest.fixture(scope="session")
def yolo_p4(yolo_inputs):
    return _quantize(yolo_inputs, "esp32p4", "int8")


def test_outputs_are_not_degenerate(yolo_p4):
    model = load(yolo_p4.espdl_path)
    for name, t in model.test_outputs.items():
        assert np.unique(t.array).size > 8, f"{name} is nearly constant: the random model is too weak a test"


def test_p4_int8_selftest_exact_on_espdl_339(yolo_p4):
    model = load(yolo_p4.espdl_path)
    assert model.sha256 == yolo_p4.sha256
    assert {n.attributes.get("input1_layout") for n in model.nodes if n.op_type == "MatMul"} <= {"packed", None}
    result = selftest(model, "esp32p4", espdl_version="3.3.9")
    assert result.ok, [(o.name, o.mismatches, o.max_abs_diff) for o in result.outputs]


def test_every_tensor_matches_the_ppq_executor(yolo_p4):
    """Stage by stage: each tensor the reference's ESP-PPQ executor computes equals the emulator's, bit for
    bit - including the attention Softmax's float output, which both compute as ESP-DL does (the emulator
    in host.espdl.ops, the executor through host.reference.softmax's hook)."""
    from host.reference.simulate import PPQSimulator

    model = load(yolo_p4.espdl_path)
    em = Emulator(model, "esp32p4")
    x = model.test_inputs["images"].array
    ours = em.run({"images": x}, keep_all=True)
    simulator = PPQSimulator(yolo_p4.graph_path)
    assert simulator.hooks, "the graph has an attention Softmax the executor must compute as ESP-DL does"
    names = [n for n in em.tensor_order() if n in simulator.graph.variables and n in ours]
    assert len(names) > 200
    ppq = {}
    for name, a in simulator.intermediates(x.reshape(model.inputs[0].shape), names).items():
        if ours[name].dtype.kind != "f":
            a = np.round(a / 2.0 ** ours.exponents[name])
        ppq[name] = in_espdl_layout(a, ours[name])
    ints = [n for n in names if ours[n].dtype.kind != "f"]
    floats = [n for n in names if ours[n].dtype.kind == "f"]
    assert floats, "the Softmax's float output should be among the compared tensors"
    assert first_divergence(ours, ppq, ints) is None
    assert first_divergence(ours, ppq, floats, atol=0.0) is None


def test_s3_int8_selftest_exact(yolo_inputs, yolo_p4):
    """Exact on S3 too, and the convs whose sum |x*w| + |bias| reaches 2^19 are named: the S3's 20-bit
    saturating lanes could change them on the chip (P4 accumulates in 32 bits: no such notes)."""
    q = _quantize(yolo_inputs, "esp32s3", "int8")
    model = load(q.espdl_path)
    result = selftest(model, "esp32s3", espdl_version="3.3.9")
    assert result.ok, [(o.name, o.mismatches, o.max_abs_diff) for o in result.outputs]
    lanes = {n: t for n, t in result.notes.items() if "20-bit" in t}
    types = {n.name: n.op_type for n in model.nodes}
    assert lanes and all(types[n] in ("Conv", "Gemm", "MatMul") for n in lanes)
    assert all(float(t.split("reaches ")[1].split(" ")[0]) >= 2**19 for t in lanes.values())
    p4 = selftest(load(yolo_p4.espdl_path), "esp32p4", espdl_version="3.3.9")
    assert not any("20-bit" in t for t in p4.notes.values())
    # what a sim DUT session reports as its fidelity limits (session provenance, HTML report)
    from host.dut.backend import Artifact
    from host.dut.sim.backend import emulator_notes

    assert sorted(emulator_notes(Artifact(q.espdl_path, q.espdl_path, q.sha256), "esp32s3")) == sorted(f"{n}: {t}" for n, t in result.notes.items())


def test_p4_mixed_preset_within_esp_dl_tolerance(yolo_inputs):
    """int16 convs: ESP-PPQ's float32 simulation can be off by one (see test_emulator); esp-dl's
    Model::test() allows +-1 for int16 outputs, and int8 outputs must still be exact."""
    q = _quantize(yolo_inputs, "esp32p4", "mixed")
    model = load(q.espdl_path)
    assert "S16" in {n.attributes.get("quant_type") for n in model.nodes}
    result = selftest(model, "esp32p4", espdl_version="3.3.9", int16_tolerance=1)
    assert result.ok, [(o.name, o.mismatches, o.max_abs_diff) for o in result.outputs]


def test_espdl_run_gives_the_reference_detections(yolo_inputs, yolo_p4, capsys):
    """End to end: `espdl run` (preprocess, emulator, postprocess) reports the same boxes as the PPQ-based
    reference, because both engines produce identical int8 outputs."""
    import json

    from host.cli import main
    from host.reference.reference import reference

    image = sorted(yolo_inputs[1].iterdir())[3]
    capsys.readouterr()
    assert main(["espdl", "run", str(yolo_p4.espdl_path), "--image", str(image), "--score-thr", "0.05",
                 "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)
    ref = reference(image, yolo_p4, "esp32p4", score_thr=0.05)
    assert ours["boxes"] == [b.to_dict() for b in ref.boxes]
    assert ours["candidates"] == len(ref.post.candidates) > 0
