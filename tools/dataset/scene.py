"""Scene composition: places shapes on a background with bounded overlap and border cuts, returns labels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tools.dataset.classes import KIND_TO_CLASS, KINDS
from tools.dataset.render import Shape, background, coverage, paint, subsample_box

MIN_VISIBLE = 0.5  # an object cut by the border keeps at least this fraction of its area inside
MAX_OCCLUDED = 0.3  # a later object may hide at most this fraction of an earlier one
MIN_COLOUR_DIST = 140.0  # L1 distance between an object's colour and the background under it


@dataclass(frozen=True)
class SceneSpec:
    """What a scene may contain. Sizes are fractions of the image's shorter side (object's longer side)."""

    width: int
    height: int
    n_min: int = 1
    n_max: int = 6
    size_min: float = 0.12
    size_max: float = 0.55
    border_prob: float = 0.2
    noise_amp: int = 4
    kinds: tuple[str, ...] = field(default=KINDS)


@dataclass(frozen=True)
class Box:
    """A ground-truth box in pixels, [x0, y0, x1, y1) clipped to the image."""

    cls: int
    kind: str
    x0: float
    y0: float
    x1: float
    y1: float


def _aspect_range(kind: str) -> tuple[float, float]:
    return {"block": (0.4, 2.5), "frame": (0.4, 2.5), "disc": (0.55, 1.8), "ring": (0.55, 1.8)}.get(kind, (0.7, 1.4))


def _sample_shape(rng: np.random.Generator, spec: SceneSpec) -> Shape:
    kind = spec.kinds[int(rng.integers(0, len(spec.kinds)))]
    short = min(spec.width, spec.height)
    # log-uniform size so small objects are as common as large ones
    size = short * math.exp(float(rng.uniform(math.log(spec.size_min), math.log(spec.size_max))))
    lo, hi = _aspect_range(kind)
    aspect = math.exp(float(rng.uniform(math.log(lo), math.log(hi))))  # width / height
    if aspect >= 1:
        a, b = size / 2, size / 2 / aspect
    else:
        a, b = size / 2 * aspect, size / 2
    a, b = max(a, 3.0), max(b, 3.0)
    if kind in ("disc", "ring", "block", "frame") and rng.uniform() < 0.6:
        angle = 0.0  # axis-aligned most of the time: the box then hugs the shape
    else:
        angle = float(rng.uniform(0, 2 * math.pi))
    thickness = float(rng.uniform(0.15, 0.35)) if kind != "cross" else float(rng.uniform(0.18, 0.35))
    detail = float(rng.uniform(-0.6, 0.6)) if kind == "triangle" else float(rng.uniform(0.38, 0.55))
    if rng.uniform() < spec.border_prob:
        # centre near or beyond an edge, so the border cuts the object
        cx = float(rng.uniform(-0.3 * a, spec.width + 0.3 * a))
        cy = float(rng.uniform(-0.3 * b, spec.height + 0.3 * b))
        edge = int(rng.integers(0, 4))
        if edge == 0:
            cx = float(rng.uniform(-0.3 * a, 0.4 * a))
        elif edge == 1:
            cx = float(spec.width - rng.uniform(-0.3 * a, 0.4 * a))
        elif edge == 2:
            cy = float(rng.uniform(-0.3 * b, 0.4 * b))
        else:
            cy = float(spec.height - rng.uniform(-0.3 * b, 0.4 * b))
    else:
        cx = float(rng.uniform(min(a, spec.width / 2), max(spec.width - a, spec.width / 2)))
        cy = float(rng.uniform(min(b, spec.height / 2), max(spec.height - b, spec.height / 2)))
    shade = float(rng.uniform(-0.25, 0.25)) if rng.uniform() < 0.5 else 0.0
    return Shape(kind, cx, cy, a, b, angle, thickness, detail, (0.0, 0.0, 0.0), shade)


def _pick_colour(rng: np.random.Generator, under: np.ndarray) -> tuple[float, float, float]:
    mean = under.reshape(-1, 3).mean(axis=0)
    for _ in range(30):
        col = rng.integers(0, 256, size=3).astype(np.float64)
        if float(np.abs(col - mean).sum()) >= MIN_COLOUR_DIST:
            return (float(col[0]), float(col[1]), float(col[2]))
    inv = 255.0 - mean
    return (float(inv[0]), float(inv[1]), float(inv[2]))


def _overlap(cov_a: np.ndarray, win_a: tuple[int, int, int, int], cov_b: np.ndarray,
             win_b: tuple[int, int, int, int]) -> float:
    """Fraction of a's coverage that b covers."""
    x0, y0 = max(win_a[0], win_b[0]), max(win_a[1], win_b[1])
    x1, y1 = min(win_a[2], win_b[2]), min(win_a[3], win_b[3])
    if x0 >= x1 or y0 >= y1:
        return 0.0
    pa = cov_a[y0 - win_a[1]:y1 - win_a[1], x0 - win_a[0]:x1 - win_a[0]]
    pb = cov_b[y0 - win_b[1]:y1 - win_b[1], x0 - win_b[0]:x1 - win_b[0]]
    return float((pa * pb).sum()) / max(float(cov_a.sum()), 1e-9)


def _inside_fraction(cov: np.ndarray, win: tuple[int, int, int, int], width: int, height: int) -> float:
    x0, y0, x1, y1 = max(win[0], 0), max(win[1], 0), min(win[2], width), min(win[3], height)
    if x0 >= x1 or y0 >= y1:
        return 0.0
    inside = cov[y0 - win[1]:y1 - win[1], x0 - win[0]:x1 - win[0]].sum()
    return float(inside) / max(float(cov.sum()), 1e-9)


def render_scene(rng: np.random.Generator, spec: SceneSpec) -> tuple[np.ndarray, list[Box]]:
    """Draw one scene; returns the uint8 HxWx3 image and its boxes in drawing order."""
    width, height = spec.width, spec.height
    img = background(rng, width, height, 0)
    target = int(rng.integers(spec.n_min, spec.n_max + 1))
    placed: list[tuple[Shape, np.ndarray, tuple[int, int, int, int], np.ndarray]] = []
    attempts = 0
    while len(placed) < target and attempts < target * 25:
        attempts += 1
        shape = _sample_shape(rng, spec)
        cov, win, mask = coverage(shape)
        if _inside_fraction(cov, win, width, height) < MIN_VISIBLE:
            continue
        if any(_overlap(c, w, cov, win) > MAX_OCCLUDED or _overlap(cov, win, c, w) > 0.6 for _, c, w, _ in placed):
            continue
        x0, y0 = max(win[0], 0), max(win[1], 0)
        x1, y1 = min(win[2], width), min(win[3], height)
        under = img[y0:y1, x0:x1]
        sel = cov[y0 - win[1]:y1 - win[1], x0 - win[0]:x1 - win[0]] > 0
        shape = Shape(shape.kind, shape.cx, shape.cy, shape.a, shape.b, shape.angle, shape.thickness,
                      shape.detail, _pick_colour(rng, under[sel] if sel.any() else under), shape.shade)
        paint(img, shape, cov, win)
        placed.append((shape, cov, win, mask))
    if spec.noise_amp > 0:
        img = img + rng.integers(-spec.noise_amp, spec.noise_amp + 1, size=img.shape).astype(np.float64)
    out = np.floor(np.clip(img, 0.0, 255.0) + 0.5).astype(np.uint8)
    boxes = []
    for shape, _, win, mask in placed:
        box = subsample_box(mask, win)
        if box is None:
            continue
        x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
        x1, y1 = min(box[2], float(width)), min(box[3], float(height))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        boxes.append(Box(KIND_TO_CLASS[shape.kind], shape.kind, x0, y0, x1, y1))
    return out, boxes
