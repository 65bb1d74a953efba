"""Shared fixtures for the host reference tests: a small quantized YOLO11n built once per session.

The network is YOLO11n's architecture (`yolo11n.yaml` at half width, 4 classes) with seeded, deliberately
spread-out weights (tests/host/builders.py: a default random init gives constant outputs), exported with the
split head at 64x64 and quantized by ESP-PPQ for ESP32-P4 with test values embedded. Untrained, but its
outputs vary, which is what bit-exactness checks need, and it builds in seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.host.builders import export_random_yolo11n

IMGSZ = 64
NUM_CLASSES = 4
TARGET = "esp32p4"


@dataclass(frozen=True)
class TinyModel:
    """Duck-typed like host.model.QuantizedModel for what the reference needs."""

    espdl_path: Path
    graph_path: Path
    onnx_path: Path
    sha256: str
    input_exponent: int
    target: str
    imgsz: int
    test_image: np.ndarray  # RGB888 image whose int8 input is embedded in the .espdl


def _image(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)[:h, :w].copy()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> TinyModel:
    import shutil

    import torch
    from esp_ppq.api import espdl_quantize_onnx
    from esp_ppq.core.quant import TensorQuantizationConfig
    from esp_ppq.log import NaiveLogger
    from esp_ppq.parser.native import NativeExporter

    from host.cache import sha256_file
    from host.chip.preprocess import preprocess

    os.environ.setdefault("YOLO_OFFLINE", "1")
    for name in ("ESPDL", "PPQ"):
        NaiveLogger.get_logger(name).set_level("warning")
    TensorQuantizationConfig._hash_seed = 0
    out = tmp_path_factory.mktemp("tiny_model")
    # half YOLO11n's width (0.125 instead of 0.25): a quarter of the parameters
    onnx_path = export_random_yolo11n(out / "model.onnx", IMGSZ, nc=NUM_CLASSES, width=0.125)

    # Calibrate on what the device will see: ESP-DL letterboxed inputs, at the expected exponent -7 grid.
    def as_float(img):
        q, _ = preprocess(img, IMGSZ, -7, TARGET)
        return torch.from_numpy(q.astype(np.float32).transpose(0, 3, 1, 2) / 128.0)

    calib = [torch.cat([as_float(_image(s * 4 + k, 48 + 8 * k, 64)) for k in range(4)]) for s in range(2)]
    test_image = _image(99, 40, 64)
    work = out / "work.onnx"
    shutil.copyfile(onnx_path, work)
    espdl_path = out / "model.espdl"
    from esp_ppq.api.setting import QuantizationSettingFactory

    setting = QuantizationSettingFactory.espdl_setting()
    setting.quantize_activation_setting.calib_algorithm = "minmax"  # KL costs ~20 s here, tests need no accuracy
    graph = espdl_quantize_onnx(
        onnx_import_file=str(work),
        espdl_export_file=str(espdl_path),
        calib_dataloader=calib,
        calib_steps=2,
        input_shape=[1, 3, IMGSZ, IMGSZ],
        inputs=[as_float(test_image)],
        target=TARGET,
        collate_fn=lambda x: x.to("cpu"),
        setting=setting,
        device="cpu",
        error_report=False,
        export_config=False,
        export_test_values=True,
        verbose=0,
    )
    graph_path = out / "model.native"
    NativeExporter().export(str(graph_path), graph)
    from host.reference.simulate import PPQSimulator

    exponent = PPQSimulator(graph_path).input_exponent
    return TinyModel(
        espdl_path=espdl_path,
        graph_path=graph_path,
        onnx_path=onnx_path,
        sha256=sha256_file(espdl_path),
        input_exponent=exponent,
        target=TARGET,
        imgsz=IMGSZ,
        test_image=test_image,
    )


@pytest.fixture(scope="session")
def tiny_simulator(tiny_model):
    from host.reference.simulate import PPQSimulator

    return PPQSimulator(tiny_model.graph_path)
