"""The simulated DUT runs esp-dl's C++ pre/postprocess when it builds here, says so in its info record, and
says so too when it falls back to host.chip's."""

from __future__ import annotations

import numpy as np
import pytest

from host.chip.detection import Thresholds
from host.chip.pipeline import DetectPipeline
from host.protocol import messages as m
from host.protocol.wire import decode_line
from tests.host.builders import write_images, write_tiny_detector


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory) -> bytes:
    from host.espdl import write_pdl3
    from host.model import quantize_model

    root = tmp_path_factory.mktemp("espdl_cpp_sim")
    model = quantize_model(write_tiny_detector(root / "tiny.onnx"), imgsz=64,
                           calib_dir=write_images(root / "calib", 8, seed=1), cache_root=root / "cache")
    return write_pdl3({"model": model.espdl_path.read_bytes()})


def info_record(device) -> dict:
    written: list[bytes] = []
    device._write = written.append
    device.backend._write = written.append
    device.booted = True
    device.feed(m.encode_request(m.request(m.INFO, 1)))
    lines = [line for chunk in written for line in chunk.splitlines(keepends=True) if line.startswith(b"@HIL")]
    return decode_line(lines[-1])


@pytest.mark.parametrize("target", ["esp32p4", "esp32s3"])
def test_sim_runs_espdl_cpp_and_says_so(espdl_cpp, tiny_pack, target) -> None:
    from host.chip.postprocess import postprocess as python_postprocess
    from host.chip.preprocess import preprocess as python_preprocess
    from host.dut.sim.device import SimDevice

    device = SimDevice(tiny_pack, target, lambda data: None)
    record = info_record(device)
    assert record["prepost"].startswith(espdl_cpp.IMPLEMENTATION), record["prepost"]
    assert ("p4 build" if target == "esp32p4" else "s3 build") in record["prepost"]
    pipeline = device.backend.pipeline
    assert pipeline.preprocessor is espdl_cpp.preprocess
    python = DetectPipeline(device.backend.engine, target)
    rng = np.random.default_rng(7)
    for shape in [(90, 120, 3), (64, 64, 3), (300, 41, 3)]:
        image = (rng.random(shape) * 255).astype(np.uint8)
        ours, theirs = python.detect(image, Thresholds(0.3, 0.7, 10)), pipeline.detect(image, Thresholds(0.3, 0.7, 10))
        assert np.array_equal(ours.input_tensor, theirs.input_tensor) and ours.geometry == theirs.geometry
        assert ours.boxes == theirs.boxes and len(ours.post.candidates) == len(theirs.post.candidates)
    assert python_preprocess is not pipeline.preprocessor and python_postprocess is not pipeline.postprocessor


def test_sim_falls_back_to_host_chip_and_says_why(tiny_pack, monkeypatch) -> None:
    from host import espdl_cpp
    from host.chip.preprocess import preprocess as python_preprocess
    from host.dut.sim.device import SimDevice

    reason = f"{espdl_cpp.PYTHON_IMPLEMENTATION}: esp-dl C++ unavailable (no C++ compiler: g++ is not on PATH)"
    monkeypatch.setattr(espdl_cpp, "status", lambda target: espdl_cpp.Status(False, reason))
    device = SimDevice(tiny_pack, "esp32p4", lambda data: None)
    assert info_record(device)["prepost"] == reason
    assert device.backend.pipeline.preprocessor is python_preprocess


def test_status_names_what_is_missing(tmp_path, monkeypatch) -> None:
    """status() never raises for a missing esp-dl or compiler: it reports the fallback and the reason."""
    from host.espdl_cpp import api

    monkeypatch.setattr(api, "_built", None)
    monkeypatch.setattr(api, "_libs", {})
    monkeypatch.setenv("ESPDL_PATH", str(tmp_path / "gone"))
    from host import espdl_cpp

    status = espdl_cpp.status("esp32p4")
    assert not status.available
    assert status.description.startswith("host.chip (python): esp-dl C++ unavailable (esp-dl sources not found at "
                                         f"{tmp_path / 'gone'}")
