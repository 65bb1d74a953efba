"""Calibration sets: a folder of images turned into the float tensors ESP-PPQ calibrates on.

How calibration images are resized matters. Espressif's tutorial stretches every image to S x S
with bilinear interpolation; the device letterboxes with nearest-neighbour sampling and grey (114)
borders. Activation ranges (and so exponents) are chosen from what calibration sees: a model
calibrated on stretched images never sees the constant border the device feeds it, and its
input statistics differ from the device's. `letterbox` (the default) calibrates on exactly what
the device computes; `stretch` reproduces the tutorial.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host.cache import sha256_file
from host.errors import HarnessError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MODES = ("letterbox", "stretch")
DEFAULT_CALIB_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "calib"


@dataclass(frozen=True)
class CalibrationSet:
    """The image files of a calibration folder and a digest of their names and bytes."""

    folder: Path
    files: tuple[Path, ...]
    sha256: str


def find_calibration_set(folder: str | Path | None) -> CalibrationSet:
    """List a calibration folder's images (sorted, so the set and its digest are deterministic)."""
    folder = Path(folder) if folder is not None else DEFAULT_CALIB_DIR
    if not folder.is_dir():
        raise HarnessError(f"calibration folder {folder} does not exist; pass --calib DIR with images in it")
    files = tuple(sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise HarnessError(
            f"calibration folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
            "add at least a few dozen representative images"
        )
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return CalibrationSet(folder, files, digest.hexdigest())


def stretch(rgb: np.ndarray, imgsz: int) -> np.ndarray:
    """The tutorial's resize: bilinear to imgsz x imgsz, ignoring the aspect ratio; float [0, 1] CHW."""
    import torch
    import torch.nn.functional as F

    chw = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).float().div(255.0)
    out = F.interpolate(chw[None], size=(imgsz, imgsz), mode="bilinear", align_corners=False, antialias=True)
    return out[0].numpy()


def letterbox(rgb: np.ndarray, imgsz: int) -> np.ndarray:
    """The device's resize (ESP-DL letterbox, nearest neighbour, pad 114); float [0, 1] CHW."""
    from host.chip.preprocess import YOLO11_PAD, letterbox_geometry, source_indices

    height, width = rgb.shape[:2]
    geom = letterbox_geometry(width, height, imgsz, imgsz)
    boxed = np.full((imgsz, imgsz, 3), YOLO11_PAD, dtype=np.uint8)
    xs = source_indices(geom.inner_width, geom.inv_scale_x, width)
    ys = source_indices(geom.inner_height, geom.inv_scale_y, height)
    boxed[geom.border_top : imgsz - geom.border_bottom, geom.border_left : imgsz - geom.border_right] = rgb[
        ys[:, None], xs[None, :]
    ]
    return boxed.transpose(2, 0, 1).astype(np.float32) / 255.0


def image_tensor(path: Path, imgsz: int, mode: str = "letterbox") -> np.ndarray:
    """One image file as float32 [1, 3, imgsz, imgsz] in [0, 1], resized the `mode` way."""
    from host.chip.preprocess import load_image

    if mode not in MODES:
        raise HarnessError(f"unknown calibration preprocessing {mode!r}; choose one of {', '.join(MODES)}")
    resize = letterbox if mode == "letterbox" else stretch
    return resize(load_image(path), imgsz)[None].astype(np.float32)


def calibration_tensors(calib: CalibrationSet, imgsz: int, mode: str = "letterbox") -> np.ndarray:
    """All calibration images as one float32 array [N, 3, imgsz, imgsz] in [0, 1]."""
    if mode not in MODES:
        raise HarnessError(f"unknown calibration preprocessing {mode!r}; choose one of {', '.join(MODES)}")
    return np.concatenate([image_tensor(path, imgsz, mode) for path in calib.files])
