"""Builders shared by the harness's own tests: a tiny split-head detector ONNX and image folders."""

from __future__ import annotations

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
