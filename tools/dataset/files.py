"""Writing images and labels: PNG at a fixed compression level, YOLO txt lines, pixel-box JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from tools.dataset.scene import Box

PNG_COMPRESS_LEVEL = 9


def write_png(path: Path, img: np.ndarray) -> None:
    """PNG without metadata chunks, so the bytes depend only on the pixels and the zlib in use."""
    Image.fromarray(img, mode="RGB").save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)


def yolo_lines(boxes: list[Box], width: int, height: int) -> str:
    """Ultralytics label text: `cls cx cy w h`, normalised to [0, 1], six decimals."""
    lines = []
    for b in boxes:
        cx, cy = (b.x0 + b.x1) / 2 / width, (b.y0 + b.y1) / 2 / height
        w, h = (b.x1 - b.x0) / width, (b.y1 - b.y0) / height
        lines.append(f"{b.cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "".join(line + "\n" for line in lines)


def pixel_boxes(boxes: list[Box]) -> list[dict]:
    """Boxes as JSON-ready dicts in pixels, [x0, y0, x1, y1] with x1/y1 exclusive edges."""
    return [{"class": b.cls, "kind": b.kind, "xyxy": [round(b.x0, 2), round(b.y0, 2), round(b.x1, 2), round(b.y1, 2)]}
            for b in boxes]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sha256_pixels(img: np.ndarray) -> str:
    """Hash of the decoded RGB pixels (plus shape): independent of the PNG encoder's version."""
    h = hashlib.sha256(f"{img.shape[0]}x{img.shape[1]}x{img.shape[2]}".encode())
    h.update(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
    return h.hexdigest()


def write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
