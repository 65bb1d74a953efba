"""A YOLO11n with seeded random weights whose activations vary, exported and quantized by the harness pipeline.

ultralytics' default initialisation (BatchNorm weight 1, bias 0, and the head's prior biases) makes the
outputs of an untrained YOLO11n nearly constant, which would make a bit-exactness test weak; randomising
the BatchNorm parameters with a fixed seed gives varied, image-dependent activations everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 0


def write_calibration_images(folder: Path, count: int = 8, seed: int = SEED) -> Path:
    """Smooth random colour fields (upscaled noise): image-like statistics, no files to ship."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.integers(0, 256, size=(6 + i % 3, 8 + i % 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((400 - 16 * i, 320 + 8 * i), Image.BILINEAR).save(folder / f"img{i:02d}.png")
    return folder


def export_random_yolo11n(out_path: Path, imgsz: int, seed: int = SEED) -> Path:
    import torch
    from ultralytics import YOLO

    from host.model.export import export_onnx

    torch.manual_seed(seed)
    model = YOLO("yolo11n.yaml").model
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
