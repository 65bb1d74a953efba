"""Builders shared by the harness's own tests: small detector ONNX files (a few-conv split-head network,
and YOLO11n's architecture with seeded random weights) and image folders."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np


def write_tiny_detector(path: Path, imgsz: int = 64, nc: int = 80) -> Path:
    """A few-conv network with YOLO11's six split-head outputs: quantizes in seconds, not minutes."""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.SiLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.SiLU())
            self.down = nn.ModuleList(
                [nn.Sequential(nn.Conv2d(16, 16, 3, 2, 1), nn.SiLU()) for _ in range(3)]
            )
            self.box = nn.ModuleList([nn.Conv2d(16, 64, 1) for _ in range(3)])
            self.cls = nn.ModuleList([nn.Conv2d(16, nc, 1) for _ in range(3)])

        def forward(self, x):
            x = self.stem(x)
            outs = []
            for i in range(3):
                x = self.down[i](x)
                outs += [self.box[i](x), self.cls[i](x)]
            return tuple(outs)

    torch.onnx.export(
        Tiny().eval(), (torch.zeros(1, 3, imgsz, imgsz),), str(path), opset_version=13,
        input_names=["images"], output_names=["box0", "score0", "box1", "score1", "box2", "score2"],
        dynamo=False,
    )
    return path


def write_images(folder: Path, count: int, seed: int = 0) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = (int(v) for v in rng.integers(40, 120, 2))
        pixels = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:02d}.png")
    return folder


def write_calibration_images(folder: Path, count: int = 8, seed: int = 0) -> Path:
    """Smooth random colour fields (upscaled noise): image-like statistics, no files to ship."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.integers(0, 256, size=(6 + i % 3, 8 + i % 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((400 - 16 * i, 320 + 8 * i), Image.BILINEAR).save(folder / f"img{i:02d}.png")
    return folder


def export_random_yolo11n(out_path: Path, imgsz: int, seed: int = 0, nc: int = 80, width: float = 0.25) -> Path:
    """YOLO11n's architecture (`yolo11n.yaml`; `width` multiplies its channels as the yaml's scales do,
    0.25 is YOLO11n itself) with seeded random weights whose activations vary, exported with the split
    head by the harness pipeline.

    ultralytics' default initialisation (BatchNorm weight 1, bias 0, and the head's prior biases) makes
    the outputs of an untrained YOLO11n nearly constant, which would make a bit-exactness test weak;
    randomising the BatchNorm parameters with a fixed seed gives varied, image-dependent activations.
    """
    import torch
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    from host.model.export import export_onnx

    cfg = yaml_model_load("yolo11n.yaml")
    cfg["scales"] = {**cfg["scales"], "n": [0.50, width, 1024]}
    torch.manual_seed(seed)
    model = DetectionModel(cfg, nc=nc, verbose=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.5)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
        # the head's prior biases (box 1.0, class about -10) would pin every output: give them spread
        head = model.model[-1]
        for branch in (*head.cv2, *head.cv3):
            last = branch[-1]
            last.bias.copy_(torch.randn(last.bias.shape, generator=gen))
            last.weight.mul_(4.0)
    model.eval()
    export_onnx(model, imgsz, out_path)
    return out_path


def corruptions(data: bytes, limit: int = 64) -> list[tuple[int, bytes]]:
    """Single-byte corruptions: every position for short frames, a fixed sample for long ones."""
    positions = list(range(len(data)))
    if len(positions) > limit:
        positions = sorted(random.Random(len(data)).sample(positions, limit) + [0, len(data) - 1])
    out = []
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x01 if data[pos] != 0x0B else 0x02  # never turn a byte into LF
        out.append((pos, bytes(bad)))
    return out


LATENCY_META = {"dut_kind": "sim", "target": "esp32p4", "chip_revision": 100, "model_sha256": "ab" * 32,
                "imgsz": 320, "firmware_config": "sim"}


def latency_result(seed: int, scale: dict[str, float] | None = None, meta: dict | None = None) -> dict:
    """A latency.json-shaped result: 5 windows x 20 runs per stage, log-normal noise, stages scaled by `scale`."""
    rng = np.random.default_rng(seed)
    base = {"pre": 5200.0, "model": 550000.0, "post": 5300.0}
    noise = {"pre": 0.02, "model": 0.004, "post": 0.03}
    windows = [{s: (base[s] * (scale or {}).get(s, 1.0) * np.exp(rng.normal(0, noise[s], 20))).round().tolist()
                for s in base} for _ in range(5)]
    return {"meta": {**LATENCY_META, **(meta or {})}, "windows": windows}
