"""ESP-DL's ImagePreprocessor as set up for yolo11 (mean 0, std 255, letterbox pad 114), bit for bit.

Mirrors esp-dl/vision/image/dl_image_preprocessor.cpp (letterbox geometry),
dl_image_process.cpp `gen_xy_map` (nearest-neighbour source indices) and dl_image_norm_quant.hpp
(the per-channel 256-entry quantization table), so the host builds the same int8 input tensor
the chip builds from the same RGB888 pixels. Every float step is done in float32, as on the chip.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from host.errors import HarnessError
from host.chip.rounding import inv_scale_of, quantize_float32
from host.chip.targets import check_target

YOLO11_MEAN = (0.0, 0.0, 0.0)
YOLO11_STD = (255.0, 255.0, 255.0)
YOLO11_PAD = 114
MAX_SIDE = 65535  # img_t stores width and height as uint16_t


@dataclass(frozen=True)
class Geometry:
    """Letterbox geometry of one preprocess call: what the postprocess needs to map boxes back."""

    src_width: int
    src_height: int
    dst_width: int
    dst_height: int
    border_top: int
    border_bottom: int
    border_left: int
    border_right: int
    inv_scale_x: float  # float32 value: source width / inner width
    inv_scale_y: float

    @property
    def border(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right), the order ESP-DL stores it in."""
        return (self.border_top, self.border_bottom, self.border_left, self.border_right)

    @property
    def inner_width(self) -> int:
        return self.dst_width - self.border_left - self.border_right

    @property
    def inner_height(self) -> int:
        return self.dst_height - self.border_top - self.border_bottom

    def to_dict(self) -> dict:
        d = asdict(self)
        d["border"] = list(self.border)
        d["inv_scale"] = [self.inv_scale_x, self.inv_scale_y]
        return d


def _dst_size(imgsz: int | Sequence[int]) -> tuple[int, int]:
    """(width, height) of the model input from an int (square) or (height, width)."""
    if isinstance(imgsz, (int, np.integer)):
        h = w = int(imgsz)
    else:
        h, w = (int(v) for v in imgsz)
    if h <= 0 or w <= 0 or h > MAX_SIDE or w > MAX_SIDE:
        raise HarnessError(f"model input size {h}x{w} is not usable: pass --imgsz as a positive size such as 320 or 640")
    return w, h


def letterbox_geometry(src_width: int, src_height: int, dst_width: int, dst_height: int) -> Geometry:
    """The letterbox ESP-DL computes: float32 scales, C truncation, centred pad (odd pixel bottom/right)."""
    f32 = np.float32
    scale_x = f32(dst_width) / f32(src_width)
    scale_y = f32(dst_height) / f32(src_height)
    scale = min(scale_x, scale_y)
    top = bottom = left = right = 0
    if scale_x < scale_y:
        pad = dst_height - int(scale * f32(src_height))
        top = pad // 2
        bottom = pad - top
    else:
        pad = dst_width - int(scale * f32(src_width))
        left = pad // 2
        right = pad - left
    # ImageTransformer::transform rejects a border that leaves no image row or column (ESP_FAIL, then abort).
    if top + bottom > dst_height - 1 or left + right > dst_width - 1:
        raise HarnessError(
            f"a {src_width}x{src_height} image letterboxed into {dst_width}x{dst_height} leaves no image "
            f"pixels (border {top},{bottom},{left},{right}); ESP-DL rejects it: crop the image to a less "
            f"extreme aspect ratio"
        )
    inner_w = dst_width - left - right
    inner_h = dst_height - top - bottom
    if inner_w == src_width and inner_h == src_height:
        inv_x = inv_y = f32(1.0)
    else:
        inv_x = f32(src_width) / f32(inner_w)
        inv_y = f32(src_height) / f32(inner_h)
    return Geometry(
        src_width=src_width,
        src_height=src_height,
        dst_width=dst_width,
        dst_height=dst_height,
        border_top=top,
        border_bottom=bottom,
        border_left=left,
        border_right=right,
        inv_scale_x=float(inv_x),
        inv_scale_y=float(inv_y),
    )


def source_indices(count: int, inv_scale: float, src_size: int) -> np.ndarray:
    """Nearest-neighbour source index per output index: min((int)(i * inv_scale), src_size - 1)."""
    i = np.arange(count, dtype=np.float32)
    idx = (i * np.float32(inv_scale)).astype(np.int64)  # non-negative, so astype truncates like (int)
    return np.minimum(idx, src_size - 1)


def quant_table(
    exponent: int,
    target: str,
    mean: Sequence[float] = YOLO11_MEAN,
    std: Sequence[float] = YOLO11_STD,
    bits: int = 8,
) -> np.ndarray:
    """int8 or int16 [3, 256] table: quantize((v - mean[c]) * (1.f / std[c]), 2**-exponent), target rounding.

    ESP-DL builds the same table for an int16 model input (dl_image_norm_quant.hpp, NormQuant<int16_t>),
    e.g. when the first conv is int16 in the `mixed` preset.
    """
    check_target(target)
    if bits not in (8, 16):
        raise HarnessError(f"model input of {bits} bits: ESP-DL's image preprocessor builds int8 or int16 inputs only")
    if not -24 <= exponent <= 24:
        raise HarnessError(
            f"input exponent {exponent} is outside any int{bits} image quantization: read the exponent from the "
            f"model (QuantizedModel.input_exponent), not by hand"
        )
    inv_scale = inv_scale_of(exponent)
    values = np.arange(256, dtype=np.float32)
    rows = []
    for m, s in zip(mean, std):
        inv_std = np.float32(1.0) / np.float32(s)
        normed = (values - np.float32(m)) * inv_std
        rows.append(quantize_float32(normed, inv_scale, target, bits=bits))
    return np.stack(rows).astype(np.int8 if bits == 8 else np.int16)


def as_rgb888(image: np.ndarray) -> np.ndarray:
    """Validate an RGB888 array (H, W, 3) uint8; raise a HarnessError naming the fix otherwise."""
    if not isinstance(image, np.ndarray):
        raise HarnessError(
            f"image must be a numpy array (H, W, 3) of uint8 RGB or an image file path, got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise HarnessError(
            f"image array has dtype {image.dtype}, ESP-DL takes RGB888 bytes: convert with "
            f"np.clip(image, 0, 255).astype(np.uint8) (scale floats in [0, 1] by 255 first)"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise HarnessError(
            f"image array has shape {image.shape}, expected (H, W, 3) RGB: convert grayscale or RGBA "
            f"to RGB first (e.g. PIL.Image.convert('RGB')), or pass the image file"
        )
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise HarnessError(f"image is empty ({w}x{h}): pass an image with at least one pixel")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise HarnessError(f"image is {w}x{h}, ESP-DL images are at most {MAX_SIDE} pixels a side: downscale it first")
    return np.ascontiguousarray(image)


def _unpatched_open():
    """Pillow's own Image.open. Importing ultralytics replaces it with a wrapper that, on an unreadable
    file, tries to pip-install a HEIF plugin (and fails offline with ModuleNotFoundError); a broken
    image must instead give the HarnessError below, with no network access."""
    import sys

    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open) if patches is not None else Image.open


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB888 with Pillow (grayscale, palette and RGBA converted; alpha dropped).

    The device decodes JPEG with its own decoder (esp_new_jpeg / the P4 hardware JPEG codec), which
    is not guaranteed to produce Pillow's pixels: compare a JPEG's int8 input tensor with the
    device's dump, or send the device raw RGB888 pixels, before blaming a later stage.
    EXIF orientation is ignored, as on the device.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"image file {p} does not exist: pass the path of a PNG or JPEG file")
    try:
        with _unpatched_open()(p) as im:
            im.load()
            if im.mode in ("I", "I;16", "I;16B", "F"):
                raise HarnessError(
                    f"image {p} has {im.mode} pixels (more than 8 bits): save it as 8-bit RGB or grayscale"
                )
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise HarnessError(f"cannot decode image {p} ({exc}): pass a readable PNG or JPEG file") from exc
    return as_rgb888(np.asarray(rgb, dtype=np.uint8))


def preprocess(
    image: np.ndarray | str | Path,
    imgsz: int | Sequence[int],
    input_exponent: int,
    target: str,
    pad_value: int = YOLO11_PAD,
    bits: int = 8,
) -> tuple[np.ndarray, Geometry]:
    """Build the int8 (or int16) NHWC [1, H, W, 3] model input ESP-DL builds from `image`, plus its Geometry."""
    check_target(target)
    rgb = load_image(image) if isinstance(image, (str, Path)) else as_rgb888(image)
    dst_w, dst_h = _dst_size(imgsz)
    src_h, src_w = rgb.shape[:2]
    geom = letterbox_geometry(src_w, src_h, dst_w, dst_h)
    table = quant_table(int(input_exponent), target, bits=bits)
    out = np.empty((dst_h, dst_w, 3), dtype=table.dtype)
    out[...] = table[np.arange(3), pad_value]
    if geom.inner_width == src_w and geom.inner_height == src_h:
        sampled = rgb
    else:
        xs = source_indices(geom.inner_width, geom.inv_scale_x, src_w)
        ys = source_indices(geom.inner_height, geom.inv_scale_y, src_h)
        sampled = rgb[ys[:, None], xs[None, :]]
    inner = out[geom.border_top : dst_h - geom.border_bottom, geom.border_left : dst_w - geom.border_right]
    if (table == table[0]).all():
        np.take(table[0], sampled, out=inner, mode="clip")
    else:
        inner[...] = table[np.arange(3), sampled]
    return out[None], geom


def tensor_sha256(tensor: np.ndarray) -> str:
    """sha256 of the tensor's bytes in C order (what the device's dump is compared against)."""
    return hashlib.sha256(np.ascontiguousarray(tensor).tobytes()).hexdigest()
