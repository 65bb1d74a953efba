"""reference(): one call through preprocess, PPQ simulation and postprocess; and the two CLIs."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from host.errors import HarnessError
from host.chip.postprocess import postprocess
from host.chip.preprocess import preprocess, tensor_sha256
from host.reference.reference import reference, simulator_for


def test_reference_keeps_every_stage(tiny_model, tiny_simulator):
    res = reference(tiny_model.test_image, tiny_model, score_thr=0.3, top_k=5, with_float=True)
    tensor, geom = preprocess(tiny_model.test_image, tiny_model.imgsz, tiny_model.input_exponent, "esp32p4")
    np.testing.assert_array_equal(res.input_tensor, tensor)
    assert res.geometry == geom and geom.border == (12, 12, 0, 0)
    raw = tiny_simulator.run(tensor)
    for name, t in raw.tensors.items():
        np.testing.assert_array_equal(res.raw.tensors[name], t)
    post = postprocess(raw.tensors, raw.exponents, geom, "esp32p4", score_thr=0.3, top_k=5)
    assert res.boxes == post.boxes
    assert len(res.post.candidates) >= len(res.boxes) > 0  # the fixture model does detect something
    assert set(res.errors) == set(raw.tensors)
    doc = res.to_json()
    json.dumps(doc)  # JSON-ready
    assert doc["boxes"] == [b.to_dict() for b in res.boxes]
    assert doc["input"]["sha256"] == tensor_sha256(tensor) and doc["input"]["exponent"] == tiny_model.input_exponent
    assert doc["geometry"]["border"] == [12, 12, 0, 0]


def test_reference_accepts_explicit_paths_and_reuses_the_simulator(tiny_model):
    a = reference(tiny_model.test_image, target="esp32p4", graph_path=tiny_model.graph_path)
    b = reference(tiny_model.test_image, SimpleNamespace(graph_path=tiny_model.graph_path), "esp32p4")
    assert a.boxes == b.boxes
    assert simulator_for(tiny_model.graph_path) is simulator_for(tiny_model.graph_path)


def test_reference_refuses_inconsistent_models(tiny_model):
    with pytest.raises(HarnessError, match="quantized for esp32p4"):
        reference(tiny_model.test_image, tiny_model, "esp32s3")
    with pytest.raises(HarnessError, match="input exponent"):
        reference(tiny_model.test_image, replace(tiny_model, input_exponent=tiny_model.input_exponent + 1))
    with pytest.raises(HarnessError, match="neither an ESP-PPQ graph nor an .espdl file"):
        reference(tiny_model.test_image, SimpleNamespace(graph_path=None, target="esp32p4"))
    with pytest.raises(HarnessError, match="no target"):
        reference(tiny_model.test_image, SimpleNamespace(graph_path=tiny_model.graph_path))


def test_graph_without_the_six_outputs_is_refused():
    from host.reference.simulate import PPQSimulator

    graph = SimpleNamespace(outputs={"output0": None}, inputs={})
    with pytest.raises(HarnessError, match="box0, score0, box1, score1, box2, score2"):
        PPQSimulator(graph)


def test_cli_preprocess(tmp_path, capsys):
    from PIL import Image

    from host.cli import main

    rgb = np.random.default_rng(5).integers(0, 256, size=(427, 640, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "img.png")
    out = tmp_path / "t.npy"
    argv = ["preprocess", str(tmp_path / "img.png"), "--imgsz", "640", "--input-exponent", "-6",
            "--target", "esp32p4", "--out", str(out), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    want, _ = preprocess(rgb, 640, -6, "esp32p4")
    np.testing.assert_array_equal(np.load(out), want)
    assert doc["border"] == [106, 107, 0, 0] and doc["inv_scale"] == [1.0, 1.0]
    assert doc["shape"] == [1, 640, 640, 3] and doc["sha256"] == tensor_sha256(want)
    assert main(["preprocess", str(tmp_path / "nope.png"), "--input-exponent", "-6"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_reference(tiny_model, tmp_path, capsys, monkeypatch):
    import host.model
    from PIL import Image

    from host.cli import main

    calls = {}

    def fake_quantize_model(model, target, imgsz, **kwargs):
        calls.update(model=model, target=target, imgsz=imgsz)
        return tiny_model

    monkeypatch.setattr(host.model, "quantize_model", fake_quantize_model)
    Image.fromarray(tiny_model.test_image).save(tmp_path / "img.png")
    argv = ["reference", "tiny.pt", "--image", str(tmp_path / "img.png"), "--target", "esp32p4", "--imgsz", "64",
            "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert calls == {"model": "tiny.pt", "target": "esp32p4", "imgsz": 64}
    want = reference(tiny_model.test_image, tiny_model)
    assert doc["boxes"] == [b.to_dict() for b in want.boxes]
    for box in doc["boxes"]:
        assert set(box) == {"category", "score", "box"} and len(box["box"]) == 4


def test_a_prequantized_espdl_runs_in_the_emulator_with_the_same_pipeline(tiny_model):
    """Without the ESP-PPQ graph (an .espdl made elsewhere) the reference's engine is the .espdl emulator;
    on the same model both engines give the same int outputs and boxes."""
    via_ppq = reference(tiny_model.test_image, tiny_model, "esp32p4")
    # this fixture is exported by bare esp-ppq 1.3.12 (native_kn MatMuls): emulate an esp-dl that reads them
    prequantized = SimpleNamespace(espdl_path=tiny_model.espdl_path, target="esp32p4", imgsz=tiny_model.imgsz,
                                   sha256=tiny_model.sha256, espdl_version="native")
    via_espdl = reference(tiny_model.test_image, prequantized, "esp32p4")
    assert via_ppq.engine == "ESP-PPQ executor" and via_espdl.engine == "host int8 emulator"
    for name, tensor in via_ppq.raw.tensors.items():
        np.testing.assert_array_equal(via_espdl.raw.tensors[name], tensor)
    assert via_espdl.boxes == via_ppq.boxes
