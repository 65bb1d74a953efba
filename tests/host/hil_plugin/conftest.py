"""The HIL suite run as a user runs it, in a subprocess, with a tiny model quantized once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host.builders import write_images, write_tiny_detector


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A tiny detector, its calibration folder and one quantization cache shared by these runs."""
    root = tmp_path_factory.mktemp("hil_session")
    return {"model": write_tiny_detector(root / "tiny.onnx"), "calib": write_images(root / "calib", 8, seed=3),
            "cache": root / "cache"}
