"""ESP-DL's yolo11 postprocessor (threshold, DFL decode, ordering, NMS, clamping), bit for bit.

Mirrors esp-dl/vision/detect/dl_detect_yolo11_postprocessor.cpp (parse_stage),
dl_detect_postprocessor.cpp (nms, get_result), dl_detect_define.hpp (greater_box, limit_box)
and dl/math/include/dl_math.hpp (sigmoid, inverse_sigmoid, softmax, dfl_integral), with the
stage table and thresholds of models/coco_detect/coco_detect.cpp.

Float model. esp-dl compiles itself with `-ffast-math -O3` (esp-dl/CMakeLists.txt). Compiled that
way for rv32imafc (checked with GCC 12.2), `dfl_integral` multiplies by `1/sum` instead of
dividing, and sums `p[i] * i` as `p3*3`, then `fma(p2, 2, .)`, `+ p1`, then `fma(p[i], i, .)` for
i = 4..15; the box edge becomes `(center - border) -/+ dfl * stride`. FLOAT_MODEL "gcc-fastmath"
(default) reproduces that; "source" follows the C++ text literally. The two differ in the last bit
of a DFL distance, which moves an integer box edge by one pixel in rare cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from host.chip.detection import DEFAULT_THRESHOLDS, OUTPUT_NAMES, Box
from host.errors import HarnessError
from host.chip.libm import expf_of_multiples, fma32, logf
from host.chip.preprocess import Geometry
from host.chip.rounding import inv_scale_of, quantize_float32, scale_of
from host.chip.targets import check_target

# (stride, offset) per stage, as coco_detect.cpp configures yolo11PostProcessor (x and y equal).
YOLO11_STAGES = ((8, 4), (16, 8), (32, 16))
REG_MAX = 16
FLOAT_MODELS = ("gcc-fastmath", "source")

f32 = np.float32
f64 = np.float64


@dataclass
class Candidates:
    """Every cell that passed the threshold, in the device's list order (before NMS, unclamped)."""

    stage: np.ndarray
    y: np.ndarray
    x: np.ndarray
    category: np.ndarray
    score_q: np.ndarray  # the int8/int16 logit
    score: np.ndarray  # float32 sigmoid
    box: np.ndarray  # (n, 4) int64, x1 y1 x2 y2, unclamped
    dfl: np.ndarray  # (n, 4) float32 distances left, top, right, bottom (in stride units)

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def boxes(self) -> list[Box]:
        return [
            Box(int(c), float(s), *(int(v) for v in b)) for c, s, b in zip(self.category, self.score, self.box)
        ]


@dataclass
class PostprocessResult:
    """Every stage of the postprocess: thresholds, candidates, NMS survivors and the final boxes."""

    thresholds: dict[str, int]  # int8-domain threshold per score output
    candidates: Candidates
    kept: np.ndarray  # indices into candidates, in output order
    boxes: list[Box] = field(default_factory=list)


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """`1.0 / (1.0 + expf(-x))`: expf in float32, the rest in double, rounded to float."""
    from host.chip.libm import expf

    e = np.asarray(expf(-np.asarray(x, dtype=f32)), dtype=f64)
    return (1.0 / (1.0 + e)).astype(f32)


def sigmoid_of_quantized(q: np.ndarray, exponent: int) -> np.ndarray:
    """sigmoid(q * 2**exponent) for integer q, vectorised through the expf table."""
    e = expf_of_multiples(-np.asarray(q, dtype=np.int64), exponent).astype(f64)
    return (1.0 / (1.0 + e)).astype(f32)


def inverse_sigmoid(x: float) -> np.float32:
    """`-logf(1.0 / x - 1)`: the quotient in double, converted to float for logf."""
    return f32(-logf(f32(1.0 / f64(f32(x)) - 1.0)))


def score_threshold(score_thr: float, exponent: int, target: str, bits: int = 8) -> int:
    """The int-domain threshold: quantize(inverse_sigmoid(score_thr), 1 / 2**exponent); cells pass when q > it."""
    if not 0.0 < score_thr < 1.0:
        raise HarnessError(f"score threshold {score_thr} is not a probability: pass a value in (0, 1), e.g. 0.25")
    return int(quantize_float32(inverse_sigmoid(score_thr), inv_scale_of(exponent), target, bits=bits))


def _fma32(a: np.ndarray, b: float, c: np.ndarray) -> np.ndarray:
    """float32 fused multiply-add: the exact a * b + c rounded once to float32 (libm.fma32).

    Not `(a * b + c)` in float64 then float32: when c is far below a * b the float64 sum already rounds, and a
    product that sits on a float32 midpoint then rounds to even instead of toward c - the chip's fmadd.s
    rounds once. The differential test against esp-dl's C++ (tests/host/espdl_cpp) found ~0.6 % of DFL
    distances off by one ulp that way for wide-range box logits (int16 outputs, exponents >= -2).
    """
    return fma32(a, f32(b), c)


def dfl_distances(box_q: np.ndarray, exponent: int, float_model: str = "gcc-fastmath") -> np.ndarray:
    """`dl_math::dfl_integral` per side: (n, 4, 16) int box logits -> (n, 4) float32 distances.

    Loops over the 16 bins and vectorises across candidates, so every sum keeps esp-dl's order.
    """
    q = np.asarray(box_q, dtype=np.int64)
    # x[i] - max is exact for int values times a power of two, so expf sees (q[i] - q_max) * 2**exp.
    e = expf_of_multiples(q - q.max(axis=-1, keepdims=True), exponent)
    total = np.zeros(q.shape[:-1], dtype=f32)
    for i in range(REG_MAX):
        total = total + e[..., i]
    if float_model == "source":
        p = e / total[..., None]
        acc = np.zeros(q.shape[:-1], dtype=f32)
        for i in range(REG_MAX):
            acc = acc + p[..., i] * f32(i)
        return acc
    if float_model != "gcc-fastmath":
        raise HarnessError(f"unknown float model {float_model!r}: use one of {', '.join(FLOAT_MODELS)}")
    p = e * (f32(1.0) / total)[..., None]
    acc = p[..., 3] * f32(3.0)
    acc = _fma32(p[..., 2], 2.0, acc)
    acc = p[..., 1] + acc
    for i in range(4, REG_MAX):
        acc = _fma32(p[..., i], float(i), acc)
    return acc


def decode_boxes(
    dfl: np.ndarray,
    center_x: np.ndarray,
    center_y: np.ndarray,
    stride: np.ndarray,
    geometry: Geometry,
    float_model: str = "gcc-fastmath",
) -> np.ndarray:
    """Integer [x1, y1, x2, y2] in source pixels: ((center -/+ d * stride) - border) * inv_scale, truncated."""
    cx = center_x.astype(f32)
    cy = center_y.astype(f32)
    s = stride.astype(f32)
    bl = f32(geometry.border_left)
    bt = f32(geometry.border_top)
    ix = f32(geometry.inv_scale_x)
    iy = f32(geometry.inv_scale_y)
    d = dfl * s[:, None]  # exact: strides are powers of two
    if float_model == "source":
        x1 = ((cx - d[:, 0]) - bl) * ix
        y1 = ((cy - d[:, 1]) - bt) * iy
        x2 = ((cx + d[:, 2]) - bl) * ix
        y2 = ((cy + d[:, 3]) - bt) * iy
    else:
        ox = cx - bl
        oy = cy - bt
        x1 = (ox - d[:, 0]) * ix
        y1 = (oy - d[:, 1]) * iy
        x2 = (ox + d[:, 2]) * ix
        y2 = (oy + d[:, 3]) * iy
    return np.trunc(np.stack([x1, y1, x2, y2], axis=1)).astype(np.int64)


def _check_outputs(outputs: Mapping[str, np.ndarray], exponents: Mapping[str, int]) -> None:
    missing = [n for n in OUTPUT_NAMES if n not in outputs or n not in exponents]
    if missing:
        raise HarnessError(
            f"model outputs lack {', '.join(missing)} (have {', '.join(sorted(outputs)) or 'none'}): ESP-DL's "
            f"yolo11 postprocess needs box0/score0/box1/score1/box2/score2; export the model with the split "
            f"detection head (host.model export)"
        )
    for i in range(3):
        b, s = np.asarray(outputs[f"box{i}"]), np.asarray(outputs[f"score{i}"])
        if b.ndim != 4 or s.ndim != 4 or b.shape[0] != 1 or b.shape[3] != 4 * REG_MAX or b.shape[:3] != s.shape[:3]:
            raise HarnessError(
                f"outputs box{i} {b.shape} / score{i} {s.shape} are not NHWC [1,h,w,64] / [1,h,w,classes]: "
                f"pass the int8 NHWC tensors from the simulator or the device dump"
            )
        for name, a in ((f"box{i}", b), (f"score{i}", s)):
            if a.dtype not in (np.int8, np.int16):
                raise HarnessError(f"output {name} has dtype {a.dtype}: pass the integer (int8/int16) tensor")


def postprocess(
    outputs: Mapping[str, np.ndarray],
    exponents: Mapping[str, int],
    geometry: Geometry,
    target: str,
    score_thr: float = DEFAULT_THRESHOLDS.score_thr,
    nms_thr: float = DEFAULT_THRESHOLDS.nms_thr,
    top_k: int = DEFAULT_THRESHOLDS.top_k,
    float_model: str = "gcc-fastmath",
    stages: tuple[tuple[int, int], ...] = YOLO11_STAGES,
) -> PostprocessResult:
    """Run ESP-DL's yolo11PostProcessor on int NHWC outputs addressed by name."""
    check_target(target)
    if float_model not in FLOAT_MODELS:
        raise HarnessError(f"unknown float model {float_model!r}: use one of {', '.join(FLOAT_MODELS)}")
    _check_outputs(outputs, exponents)
    thresholds: dict[str, int] = {}
    parts = []
    for stage, (stride, offset) in enumerate(stages):
        score = np.asarray(outputs[f"score{stage}"])[0]
        box = np.asarray(outputs[f"box{stage}"])[0]
        s_exp, b_exp = int(exponents[f"score{stage}"]), int(exponents[f"box{stage}"])
        bits = 8 * score.dtype.itemsize
        thr = score_threshold(score_thr, s_exp, target, bits)
        thresholds[f"score{stage}"] = thr
        ys, xs, cs = np.nonzero(score > thr)  # row-major: y, x, class - the device's loop order
        q = score[ys, xs, cs].astype(np.int64)
        # Classes of one anchor share its box: decode each passing anchor once (an untrained model
        # can pass every cell of every class).
        anchors, which = np.unique(ys * score.shape[1] + xs, return_inverse=True)
        ay, ax = np.divmod(anchors, score.shape[1])
        dfl = dfl_distances(box[ay, ax].reshape(-1, 4, REG_MAX), b_exp, float_model)[which.reshape(-1)]
        n = ys.shape[0]
        st = np.full(n, stride, dtype=np.int64)
        boxes = decode_boxes(dfl, xs * stride + offset, ys * stride + offset, st, geometry, float_model)
        parts.append((np.full(n, stage), ys, xs, cs, q, sigmoid_of_quantized(q, s_exp), boxes, dfl))
    cat = [np.concatenate(col) for col in zip(*parts)]
    # std::list insert at upper_bound(greater_box): descending score, equal scores keep arrival order.
    order = np.argsort(-cat[5], kind="stable")
    stage_a, y_a, x_a, c_a, q_a, s_a, b_a, d_a = (a[order] for a in cat)
    cands = Candidates(
        stage=stage_a.astype(np.int64),
        y=y_a.astype(np.int64),
        x=x_a.astype(np.int64),
        category=c_a.astype(np.int64),
        score_q=q_a,
        score=s_a.astype(f32),
        box=b_a.reshape(-1, 4),
        dfl=d_a.reshape(-1, 4).astype(f32),
    )
    kept = nms(cands.box, nms_thr, top_k)
    final = clamp_boxes(cands.box[kept], geometry.src_width, geometry.src_height)
    boxes = [
        Box(int(cands.category[k]), float(cands.score[k]), *(int(v) for v in b)) for k, b in zip(kept, final)
    ]
    return PostprocessResult(thresholds=thresholds, candidates=cands, kept=kept, boxes=boxes)


def _wrap_int32(v: np.ndarray) -> np.ndarray:
    """The value a C `int` holds after wrap-around (two's complement, as the chip's 32-bit mul/add/sub leave it)."""
    return ((np.asarray(v, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _iou_above(box: np.ndarray, area: int, others: np.ndarray, other_area: np.ndarray, thr: np.float32) -> np.ndarray:
    """Which `others` overlap `box` with `(float)inter / union > thr` (overlap needs positive width and height).

    Areas, intersection and union are C `int`s in DetectPostprocessor::nms: a box side above ~46341 pixels
    (possible when a small model input meets a large image) overflows them; the products and the union wrap
    to 32 bits here as they do on the chip, before the float division.
    """
    iw = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]) + 1
    ih = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]) + 1
    inter = _wrap_int32(iw * ih)
    union = _wrap_int32(_wrap_int32(area) + _wrap_int32(other_area) - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter.astype(f32) / union.astype(f32)
    return (iw > 0) & (ih > 0) & (iou > thr)


def nms(boxes: np.ndarray, nms_thr: float, top_k: int, chunk: int = 4096) -> np.ndarray:
    """DetectPostprocessor::nms on score-ordered integer boxes; returns the kept indices in order.

    Class-agnostic, areas with the +1 convention, IoU `(float)inter / union` compared with `> nms_thr`,
    and the walk stops at the top_k-th kept box (top_k <= 1 keeps one box, as on the device).
    A box survives exactly when no earlier kept box suppresses it, so candidates are visited in
    chunks: first against the boxes kept so far (vectorised), then in order within the chunk.
    """
    n = boxes.shape[0]
    b = boxes.astype(np.int64).reshape(-1, 4)
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    thr = f32(nms_thr)
    limit = max(int(top_k), 1)
    kept: list[int] = []
    for start in range(0, n, chunk):
        idx = np.arange(start, min(n, start + chunk))
        alive = np.ones(idx.size, dtype=bool)
        for k in kept:
            alive &= ~_iou_above(b[k], area[k], b[idx], area[idx], thr)
        pos = 0
        while True:
            rest = np.flatnonzero(alive[pos:])
            if rest.size == 0:
                break
            i = pos + int(rest[0])
            kept.append(int(idx[i]))
            if len(kept) >= limit:
                return np.asarray(kept, dtype=np.int64)
            later = idx[i + 1 :]
            alive[i + 1 :] &= ~_iou_above(b[idx[i]], area[idx[i]], b[later], area[later], thr)
            pos = i + 1
    return np.asarray(kept, dtype=np.int64)


def clamp_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """result_t::limit_box: x into [0, width - 1], y into [0, height - 1] of the source image."""
    out = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    out[:, 0::2] = np.clip(out[:, 0::2], 0, width - 1)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, height - 1)
    return out
