"""Quantization-aware training (`--preset qat`) end to end on the tiny split-head detector: a real, short
training run whose .espdl passes the checks every other preset's does, differs from the int8 result it
started from, is cached, and whose bad settings are refused with the setting's name and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from host.errors import HarnessError
from host.espdl import load, selftest
from host.espdl.check import check_file, errors
from host.model import qat, quantize_model
from host.model.presets import PRESETS, Preset, get_preset
from tools.dataset.build import build_training_set

IMGSZ = 64


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("qat-cache")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """Six synthetic scenes with YOLO labels, in the layout `python -m tools.dataset` writes."""
    out = tmp_path_factory.mktemp("qat-data")
    build_training_set(3, out, 6, 0)
    return out


@pytest.fixture(scope="module")
def int8(tiny_onnx, calib_dir, cache_root):
    return quantize_model(tiny_onnx, imgsz=IMGSZ, calib_dir=calib_dir, cache_root=cache_root)


def _qat_preset(data: Path, **overrides) -> Preset:
    return get_preset("qat", **{"qat_epochs": 1, "qat_batch": 4, "qat_data": data, **overrides})


@pytest.fixture(scope="module")
def trained(tiny_onnx, calib_dir, cache_root, labelled):
    return quantize_model(tiny_onnx, imgsz=IMGSZ, calib_dir=calib_dir, cache_root=cache_root,
                          preset=_qat_preset(labelled))


def test_qat_espdl_passes_selftest_and_check(trained) -> None:
    assert not trained.cached and trained.preset == "qat"
    model = load(trained.espdl_path)
    assert selftest(model, "esp32p4", trained.espdl_version).ok  # emulator == embedded test values
    assert errors(check_file(trained.espdl_path, "esp32p4", trained.espdl_version)) == []
    assert model.metadata["hil.preset"] == "qat"
    assert trained.summary["test_values"]["emulator_equals_reference"]


def test_training_ran_and_is_recorded(trained, labelled) -> None:
    record = trained.summary["qat"]
    assert record["epochs"] == 1 and record["steps"] == 2 and record["images"] == 6  # 6 images, batch 4
    assert record["trained_tensors"] == 22  # 11 convs: weight + bias each
    assert record["data"]["sha256"] == qat.find_training_set(labelled).sha256
    assert np.isfinite(record["history"][0]["loss"])


def test_weights_differ_from_the_int8_result(trained, int8) -> None:
    """Same graph and exponents as int8 (training keeps the calibrated scales), other integer weights."""
    a, b = load(int8.espdl_path), load(trained.espdl_path)
    assert trained.input_exponent == int8.input_exponent
    assert trained.output_exponents == int8.output_exponents
    assert sorted(a.initializers) == sorted(b.initializers)
    changed = [n for n in a.initializers if a.initializers[n].exponents == b.initializers[n].exponents
               and not np.array_equal(a.initializers[n].array, b.initializers[n].array)]
    assert changed, "QAT left every weight of the int8 graph as it was"
    assert trained.sha256 != int8.sha256


def test_second_call_is_served_from_the_cache(trained, tiny_onnx, calib_dir, cache_root, labelled) -> None:
    again = quantize_model(tiny_onnx, imgsz=IMGSZ, calib_dir=calib_dir, cache_root=cache_root,
                           preset=_qat_preset(labelled))
    assert again.cached and again.sha256 == trained.sha256 and again.espdl_path == trained.espdl_path


def test_a_rebuilt_entry_has_the_same_bytes(trained, tiny_onnx, calib_dir, labelled, tmp_path) -> None:
    """Seeded, fixed-order training: the same inputs in an empty cache give the same .espdl."""
    again = quantize_model(tiny_onnx, imgsz=IMGSZ, calib_dir=calib_dir, cache_root=tmp_path / "cache",
                           preset=_qat_preset(labelled))
    assert not again.cached and again.sha256 == trained.sha256


def test_the_cache_key_holds_the_training_settings(trained, tiny_onnx, calib_dir, cache_root, labelled,
                                                   tmp_path) -> None:
    """A copy of the data set elsewhere is the same key (content, not path); one changed label is not."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(labelled, copy)
    moved = quantize_model(tiny_onnx, imgsz=IMGSZ, calib_dir=calib_dir, cache_root=cache_root,
                           preset=_qat_preset(copy))
    assert moved.cached and moved.sha256 == trained.sha256
    label = sorted((copy / "labels" / "train").glob("*.txt"))[0]
    label.write_text("0 0.5 0.5 0.2 0.2\n")
    data_key = qat.find_training_set(copy).sha256
    assert data_key != trained.summary["qat"]["data"]["sha256"]


def test_other_presets_keep_their_cache_keys() -> None:
    """The qat_* fields are absent from the description (the cache key) of presets that do not train."""
    for name in ("int8", "mixed", "tutorial"):
        assert not any(k.startswith("qat_") for k in PRESETS[name].describe())
    assert {"qat_epochs", "qat_lr", "qat_batch", "qat_data"} <= set(PRESETS["qat"].describe())


@pytest.mark.parametrize("overrides, names", [
    ({"qat_epochs": 0}, ("qat_epochs", "at least 1 epoch")),
    ({"qat_lr": 0.0}, ("qat_lr", "positive")),
    ({"qat_lr": -1e-5}, ("qat_lr", "positive")),
    ({"qat_batch": 0}, ("qat_batch", "positive integer")),
    ({"qat_data": "/nonexistent/qat-data"}, ("qat_data", "does not exist", "python -m tools.dataset")),
])
def test_bad_settings_name_the_setting_and_the_fix(overrides, names, tiny_onnx, calib_dir, cache_root,
                                                   labelled) -> None:
    preset = _qat_preset(labelled, **overrides)
    with pytest.raises(HarnessError) as info:
        quantize_model(tiny_onnx, imgsz=IMGSZ, calib_dir=calib_dir, cache_root=cache_root, preset=preset)
    for text in names:
        assert text in str(info.value)


def test_unlabelled_images_and_bad_labels_are_refused(tmp_path, labelled) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(labelled, data)
    first = sorted((data / "labels" / "train").glob("*.txt"))
    first[0].unlink()
    with pytest.raises(HarnessError, match="no label file.*empty file"):
        qat.find_training_set(data)
    first[1].write_text("3 0.5 0.5\n")
    shutil.copyfile(first[1], first[0])
    with pytest.raises(HarnessError, match=r"line 1 is not `class cx cy w h`"):
        qat.find_training_set(data)


def test_qat_settings_on_another_preset_are_refused() -> None:
    with pytest.raises(HarnessError, match="qat_epochs only apply to preset qat"):
        get_preset("int8", qat_epochs=2)


def test_labels_follow_the_device_letterbox(labelled) -> None:
    """A box keeps its place in the picture: mapped into the letterboxed square, then back."""
    from host.chip.preprocess import letterbox_geometry
    from PIL import Image

    data = qat.find_training_set(labelled)
    image, label = data.images[0], data.labels[0]
    pixels, boxes = qat.load_sample(image, label, 320)
    assert pixels.shape == (3, 320, 320) and pixels.dtype == np.float32
    raw = np.loadtxt(label, ndmin=2)
    width, height = Image.open(image).size
    geom = letterbox_geometry(width, height, 320, 320)
    cx = (boxes[:, 1] * 320 - geom.border_left) * width / geom.inner_width
    assert np.allclose(cx, raw[:, 1] * width, atol=1e-3)
    assert np.allclose(boxes[:, 4] * 320 * height / geom.inner_height, raw[:, 4] * height, atol=1e-3)


def test_default_training_set_is_generated_once(tmp_path) -> None:
    first = qat.default_training_set(tmp_path, seed=11, images=3)
    again = qat.default_training_set(tmp_path, seed=11, images=3)
    assert len(first.images) == 3 and first.sha256 == again.sha256 and first.folder == again.folder


def test_fused_fake_quant_equals_esp_ppq(int8) -> None:
    """The training executor's fused per-tensor quantizers give esp-ppq's values and zero-gradient mask."""
    import torch
    from esp_ppq.api import load_native_graph
    from esp_ppq.executor import TorchExecutor

    graph = load_native_graph(str(int8.graph_path))
    delegates = qat._fused_fake_quant_delegates(graph)
    assert delegates
    x = torch.rand(2, 3, IMGSZ, IMGSZ)
    plain = TorchExecutor(graph, device="cpu").forward(x, output_names=["box0", "score0", "box2", "score2"])
    fused_exec = TorchExecutor(graph, device="cpu")
    for config, delegate in delegates.items():
        fused_exec.register_quantize_delegate(config, delegate)
    fused = fused_exec.forward(x, output_names=["box0", "score0", "box2", "score2"])
    assert all(torch.equal(a, b) for a, b in zip(plain, fused))
    from esp_ppq.quantization.qfunction import PPQuantFunction

    config, delegate = next(iter(delegates.items()))
    t = (torch.randn(4096) * 300 * float(config.scale)).requires_grad_(True)
    ours = delegate(t, config)
    ours.sum().backward()
    grad_ours = t.grad.clone()
    t.grad = None
    theirs = PPQuantFunction(t, config)
    theirs.sum().backward()
    assert torch.equal(ours, theirs) and torch.equal(grad_ours, t.grad)


@pytest.mark.skipif(os.environ.get("PYTHONHASHSEED") != "0", reason="needs the in-process build (PYTHONHASHSEED=0)")
def test_export_after_training_writes_what_espdl_quantize_onnx_writes(int8, tiny_onnx, calib_dir, cache_root,
                                                                      labelled, monkeypatch) -> None:
    """With training replaced by nothing, the QAT path's own export gives the int8 preset's bytes."""
    monkeypatch.setattr(qat, "train", lambda *args, **kwargs: {"skipped": True})
    untrained = Preset("int8", qat_epochs=1, qat_lr=1e-5, qat_batch=4, qat_data=str(labelled))
    built = quantize_model(tiny_onnx, imgsz=IMGSZ, calib_dir=calib_dir, cache_root=cache_root, preset=untrained)
    assert not built.cached and built.summary["qat"] == {"skipped": True}
    assert built.espdl_path.read_bytes() == int8.espdl_path.read_bytes()
