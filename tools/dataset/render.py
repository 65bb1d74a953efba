"""Pixel rendering of backgrounds and shapes with plain numpy arithmetic, reproducible across machines.

Only +, -, *, /, comparisons and integer random draws touch the pixel arrays: numpy may vectorise
sin/exp differently per CPU, so angles are turned into scalars with `math` first. Shapes are
anti-aliased by 2x2 supersampling, and their label box is the extent of the covered subsamples, so the
ground truth matches the pixels to a quarter pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SUB = (0.25, 0.75)  # subsample offsets inside a pixel (2x2 supersampling)


@dataclass(frozen=True)
class Shape:
    """One object to draw: kind, centre and half-extents in pixels, rotation, colour."""

    kind: str
    cx: float
    cy: float
    a: float  # half width before rotation
    b: float  # half height before rotation
    angle: float  # radians
    thickness: float  # ring/frame stroke or cross arm half-width, as a fraction of min(a, b)
    detail: float  # triangle apex offset, star inner-radius ratio
    color: tuple[float, float, float]
    shade: float  # strength of a linear brightness ramp across the object


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float64)


def background(rng: np.random.Generator, width: int, height: int, noise_amp: int) -> np.ndarray:
    """A textured background: one or two of gradient, stripes, blotches, checker, smooth noise."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    layers = []
    n_layers = 1 + int(rng.integers(0, 2))
    for _ in range(n_layers):
        kind = int(rng.integers(0, 5))
        c0, c1 = _random_colour(rng), _random_colour(rng)
        if kind == 0:  # linear gradient
            ang = float(rng.uniform(0, 2 * math.pi))
            dx, dy = math.cos(ang), math.sin(ang)
            t = xs * dx + ys * dy
            t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
            img = c0 + (c1 - c0) * t[..., None]
        elif kind == 1:  # stripes
            ang = float(rng.uniform(0, math.pi))
            dx, dy = math.cos(ang), math.sin(ang)
            period = float(rng.uniform(6, 48))
            duty = float(rng.uniform(0.3, 0.7))
            phase = np.mod((xs * dx + ys * dy) / period, 1.0)
            img = np.where((phase < duty)[..., None], c0, c1)
            # low-contrast stripes most of the time, so objects stay the salient thing
            img = c0 + (img - c0) * float(rng.uniform(0.15, 0.6))
        elif kind == 2:  # soft blotches
            img = np.broadcast_to(c0, (height, width, 3)).copy()
            for _ in range(int(rng.integers(3, 9))):
                bx, by = float(rng.uniform(0, width)), float(rng.uniform(0, height))
                r = float(rng.uniform(0.1, 0.5)) * min(width, height)
                d2 = ((xs - bx) ** 2 + (ys - by) ** 2) / (r * r)
                w = np.clip(1.0 - d2, 0.0, 1.0) ** 2
                img = img + (_random_colour(rng) - img) * (w[..., None] * float(rng.uniform(0.3, 0.8)))
        elif kind == 3:  # checker
            cell = int(rng.integers(8, 40))
            parity = ((xs // cell + ys // cell) % 2)[..., None]
            img = c0 + (c1 - c0) * parity * float(rng.uniform(0.1, 0.5))
        else:  # smooth value noise: a coarse random grid, bilinearly upsampled
            cell = int(rng.integers(12, 64))
            gh, gw = height // cell + 2, width // cell + 2
            grid = rng.integers(0, 256, size=(gh, gw, 3)).astype(np.float64)
            gy, gx = ys / cell, xs / cell
            y0, x0 = gy.astype(np.int64), gx.astype(np.int64)
            fy, fx = (gy - y0)[..., None], (gx - x0)[..., None]
            top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
            bot = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
            img = top * (1 - fy) + bot * fy
            img = c0 + (img - 128.0) * float(rng.uniform(0.2, 0.6))
        layers.append(img)
    out = layers[0]
    if len(layers) == 2:
        out = out * 0.5 + layers[1] * 0.5
    if noise_amp > 0:
        out = out + rng.integers(-noise_amp, noise_amp + 1, size=out.shape).astype(np.float64)
    return out


def _rotate(px: float, py: float, c: float, s: float) -> tuple[float, float]:
    return px * c - py * s, px * s + py * c


def _polygon(shape: Shape) -> list[list[tuple[float, float]]]:
    """Convex pieces (as vertex lists in image coordinates) whose union is a triangle or star."""
    c, s = math.cos(shape.angle), math.sin(shape.angle)
    a, b = shape.a, shape.b

    def place(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out = []
        for px, py in pts:
            rx, ry = _rotate(px, py, c, s)
            out.append((shape.cx + rx, shape.cy + ry))
        return out

    if shape.kind == "triangle":
        return [place([(a * shape.detail, -b), (a, b), (-a, b)])]
    # star: five spikes, each split into two triangles around the centre
    outer, inner = [], []
    for k in range(5):
        t_out = -math.pi / 2 + k * 2 * math.pi / 5
        t_in = t_out + math.pi / 5
        outer.append((a * math.cos(t_out), b * math.sin(t_out)))
        inner.append((a * shape.detail * math.cos(t_in), b * shape.detail * math.sin(t_in)))
    pieces = []
    for k in range(5):
        pieces.append(place([(0.0, 0.0), inner[k - 1], outer[k]]))
        pieces.append(place([(0.0, 0.0), outer[k], inner[k]]))
    return pieces


def _inside_convex(px: np.ndarray, py: np.ndarray, pts: list[tuple[float, float]]) -> np.ndarray:
    area2 = 0.0
    for i in range(len(pts)):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % len(pts)]
        area2 += x0 * y1 - x1 * y0
    sign = 1.0 if area2 >= 0 else -1.0
    inside = np.ones(px.shape, dtype=bool)
    for i in range(len(pts)):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % len(pts)]
        cross = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)
        inside &= cross * sign >= 0
    return inside


def extent(shape: Shape) -> tuple[int, int, int, int]:
    """Integer pixel window [x0, y0, x1, y1) that surely contains the shape (may leave the image)."""
    r = math.hypot(shape.a, shape.b) + 1.0
    return (math.floor(shape.cx - r), math.floor(shape.cy - r), math.ceil(shape.cx + r) + 1,
            math.ceil(shape.cy + r) + 1)


def coverage(shape: Shape) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """Coverage in [0, 1] over the shape's window, the window, and the boolean subsample mask."""
    x0, y0, x1, y1 = extent(shape)
    sub = np.array(SUB)
    px = (np.arange(x0, x1, dtype=np.float64)[:, None] + sub[None, :]).reshape(-1)
    py = (np.arange(y0, y1, dtype=np.float64)[:, None] + sub[None, :]).reshape(-1)
    gx, gy = np.meshgrid(px, py)
    dx, dy = gx - shape.cx, gy - shape.cy
    c, s = math.cos(shape.angle), math.sin(shape.angle)
    u, v = dx * c + dy * s, -dx * s + dy * c  # shape-local coordinates
    a, b = shape.a, shape.b
    w = shape.thickness * min(a, b)
    if shape.kind in ("disc", "ring"):
        mask = (u / a) ** 2 + (v / b) ** 2 <= 1.0
        if shape.kind == "ring":
            mask &= (u / (a - w)) ** 2 + (v / (b - w)) ** 2 > 1.0
    elif shape.kind in ("block", "frame"):
        mask = (np.abs(u) <= a) & (np.abs(v) <= b)
        if shape.kind == "frame":
            mask &= ~((np.abs(u) <= a - w) & (np.abs(v) <= b - w))
    elif shape.kind == "cross":
        mask = ((np.abs(u) <= a) & (np.abs(v) <= w)) | ((np.abs(u) <= w) & (np.abs(v) <= b))
    elif shape.kind in ("triangle", "star"):
        mask = np.zeros(gx.shape, dtype=bool)
        for piece in _polygon(shape):
            mask |= _inside_convex(gx, gy, piece)
    else:
        raise ValueError(f"unknown shape kind {shape.kind!r}")
    h, wd = y1 - y0, x1 - x0
    cov = mask.reshape(h, 2, wd, 2).mean(axis=(1, 3))
    return cov, (x0, y0, x1, y1), mask


def paint(img: np.ndarray, shape: Shape, cov: np.ndarray, window: tuple[int, int, int, int]) -> None:
    """Alpha-blend the shape's colour (with its brightness ramp) into img, clipped to the image."""
    height, width = img.shape[:2]
    x0, y0, x1, y1 = window
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    alpha = cov[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0][..., None]
    ys, xs = np.mgrid[cy0:cy1, cx0:cx1].astype(np.float64)
    ramp_dir = math.cos(shape.angle * 3.0), math.sin(shape.angle * 3.0)
    t = ((xs - shape.cx) * ramp_dir[0] + (ys - shape.cy) * ramp_dir[1]) / max(shape.a, shape.b)
    colour = np.array(shape.color)[None, None, :] * (1.0 + shape.shade * t[..., None])
    region = img[cy0:cy1, cx0:cx1]
    img[cy0:cy1, cx0:cx1] = region + (colour - region) * alpha


def subsample_box(mask: np.ndarray, window: tuple[int, int, int, int]) -> tuple[float, float, float, float] | None:
    """Tight box [x0, y0, x1, y1] in pixels around the covered subsamples (before clipping)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    x0, y0 = window[0], window[1]
    # subsample j sits at pixel x0 + j // 2 + SUB[j % 2]; each covers a half pixel
    return (x0 + cols[0] / 2.0, y0 + rows[0] / 2.0, x0 + (cols[-1] + 1) / 2.0, y0 + (rows[-1] + 1) / 2.0)
