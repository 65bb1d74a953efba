"""Fixtures for the DUT tests: a tiny quantized detector packed as a model partition, and a sim launcher."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host.builders import write_images, write_tiny_detector


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from host.model import quantize_model

    root = tmp_path_factory.mktemp("dutmodel")
    onnx_path = write_tiny_detector(root / "tiny.onnx")
    calib = write_images(root / "calib", 8, seed=1)
    return quantize_model(onnx_path, imgsz=64, calib_dir=calib, cache_root=root / "cache")


@pytest.fixture(scope="session")
def tiny_pack(tiny_model, tmp_path_factory) -> Path:
    from host.espdl import write_pdl3

    path = tmp_path_factory.mktemp("pack") / "model_partition.bin"
    path.write_bytes(write_pdl3({"model": tiny_model.espdl_path.read_bytes()}))
    return path


@pytest.fixture
def open_tiny_sim(tiny_pack):
    """Open a sim DUT on the tiny model with a fault plan; closed after the test."""
    from host.dut.sim.backend import open_sim

    opened = []

    def _open(faults: str = "", timeout_s: float = 10.0, seed: int = 0, link: str = "none"):
        dut = open_sim(tiny_pack, "esp32p4", faults=faults, timeout_s=timeout_s, seed=seed, link=link)
        opened.append(dut)
        return dut

    yield _open
    for dut in opened:
        dut.close()


@pytest.fixture(scope="session")
def test_rgb():
    import numpy as np

    rng = np.random.default_rng(7)
    return (rng.random((90, 120, 3)) * 255).astype(np.uint8)
