"""Fixtures for the model-pipeline tests: a tiny split-head detector ONNX and a calibration folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host.builders import write_images, write_tiny_detector


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    return write_tiny_detector(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="session")
def calib_dir(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("calib"), 8)
