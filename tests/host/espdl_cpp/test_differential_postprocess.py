"""host.chip.postprocess == esp-dl's own yolo11PostProcessor (C++ built for the host), bit for bit, on both chips.

Each hypothesis example draws a regime and a seed, then checks a batch of random cases: random int8 or int16 head
outputs (uniform, peaked DFL bins, huge boxes, dense overlapping boxes), output exponents, letterbox geometries
of 1..2000-pixel images into 8..320-pixel inputs, score thresholds (set to pass 0..~400 cells, or placed on a
rounding tie of the int threshold), NMS thresholds (simple fractions, 0, 1, random) and top-k (<= 0 .. all).
Compared: the int thresholds, every candidate before NMS (category, float32 score bits, unclamped box, order),
the indices NMS keeps and the final clamped boxes.
"""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.chip.detection import OUTPUT_NAMES
from host.chip import libm
from host.chip import postprocess as chip_postprocess
from host.chip.postprocess import YOLO11_STAGES, postprocess as python_postprocess
from host.chip.rounding import inv_scale_of, quantize_float32
from host.chip.preprocess import Geometry, letterbox_geometry
from host.errors import HarnessError
from tests.host.espdl_cpp.conftest import TARGETS

CASES = 10_000  # per target
EXAMPLES = 50
BATCH = CASES // EXAMPLES
REGIMES = ("uniform", "peaked", "huge-boxes", "dense-overlap", "threshold-ties", "float-probe")
NMS_CHOICES = (0.0, 0.25, float(np.float32(1 / 3)), 0.5, 0.7, 0.9, 1.0)
TOP_K_CHOICES = (-1, 0, 1, 2, 3, 10, 100, 1_000_000)
MAX_PASSING = 1500
f32 = np.float32


def _geometry(rng: np.random.Generator, regime: str):
    if regime == "float-probe":
        # Not a letterbox: an inverse scale of 2**k makes every float32 bit of a box edge (centre - border -/+
        # DFL distance * stride) visible in the truncated integer box, so a last-bit difference in the DFL
        # softmax/integral cannot hide behind the truncation. esp-dl reads these values as they are.
        dst = (int(rng.integers(8, 257)), int(rng.integers(8, 257)))
        scale = float(2.0 ** int(rng.integers(14, 22)))
        top, left = int(rng.integers(0, 8)), int(rng.integers(0, 8))
        return Geometry(src_width=2000, src_height=2000, dst_width=dst[0], dst_height=dst[1], border_top=top,
                        border_bottom=0, border_left=left, border_right=0, inv_scale_x=scale, inv_scale_y=scale)
    while True:
        if regime == "huge-boxes":  # large inverse scales: box sides beyond 46341 px overflow esp-dl's int areas
            dst = (int(rng.choice([32, 40, 64])), int(rng.choice([32, 40, 64])))
            src = (int(rng.integers(1000, 2001)), int(rng.integers(1000, 2001)))
        else:
            dst = tuple(int(np.clip(np.exp(rng.uniform(np.log(8), np.log(321))), 8, 320)) for _ in range(2))
            src = (int(np.exp(rng.uniform(0, np.log(2001)))), int(np.exp(rng.uniform(0, np.log(2001)))))
        try:
            return letterbox_geometry(max(1, src[0]), max(1, src[1]), dst[0], dst[1])
        except HarnessError:
            continue


def _box_logits(rng: np.random.Generator, regime: str, shape: tuple[int, int], lo: int, hi: int) -> np.ndarray:
    h, w = shape
    if regime in ("uniform", "threshold-ties", "float-probe"):
        span = hi if rng.random() < 0.5 else int(rng.integers(8, hi + 1))
        return rng.integers(-span - 1, span + 1, (1, h, w, 64)).clip(lo, hi)
    base = rng.integers(lo, lo + max(2, (hi - lo) // 8), (1, h, w, 4, 16))
    if regime == "huge-boxes":
        peak = np.full((1, h, w, 4), 15)
    elif regime == "dense-overlap":  # nearly the same distances everywhere: neighbouring boxes overlap heavily
        peak = np.broadcast_to(rng.integers(2, 14, (1, 1, 1, 4)), (1, h, w, 4))
    else:
        peak = rng.integers(0, 16, (1, h, w, 4))
    np.put_along_axis(base, peak[..., None], hi, axis=-1)
    second = np.clip(peak + rng.choice([-1, 1], peak.shape), 0, 15)  # a second, lower bin: fractional distances
    np.put_along_axis(base, second[..., None], rng.integers(lo, hi + 1, peak.shape)[..., None], axis=-1)
    return base.reshape(1, h, w, 64)


def _score_logits(rng: np.random.Generator, regime: str, shape: tuple[int, int], classes: int, lo: int,
                  hi: int) -> np.ndarray:
    h, w = shape
    if regime == "dense-overlap":  # few distinct values: many equal scores (insertion order decides)
        return rng.choice(np.linspace(lo, hi, 6).astype(np.int64), (1, h, w, classes))
    centre = rng.integers(lo, hi + 1)
    spread = max(1, int(rng.integers(1, max(2, (hi - lo) // 2))))
    return np.clip(np.round(rng.normal(centre, spread, (1, h, w, classes))), lo, hi).astype(np.int64)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(np.float64(x), -700, 700))))


def _logits(thresholds: np.ndarray) -> np.ndarray:
    """host.chip's inverse_sigmoid, vectorised: -logf((float)(1.0 / (double)thr - 1))."""
    t = np.asarray(thresholds, dtype=f32).astype(np.float64)
    return -libm.logf((1.0 / t - 1.0).astype(f32))


def _tie_threshold(rng: np.random.Generator, exponent: int) -> float | None:
    """A float32 score threshold whose logit times 2**-exponent is exactly k + 0.5 in float32, if one is near."""
    k = int(rng.integers(-20, 20))
    centre = np.float64(np.clip(_sigmoid((k + 0.5) * 2.0 ** exponent), 1e-6, 1 - 1e-6)).astype(f32)
    steps = np.arange(-64, 65)
    candidates = (centre.view(np.int32) + steps).astype(np.int32).view(f32)
    candidates = candidates[(candidates > 0) & (candidates < 1)]
    hits = candidates[_logits(candidates) * f32(2.0 ** -exponent) == f32(k + 0.5)]
    return float(hits[0]) if hits.size else None


def _passing(outputs, exponents, thr: float, target: str, bits: int) -> int:
    logit = _logits(np.array([thr]))[0]
    return sum(int((outputs[f"score{i}"] > quantize_float32(logit, inv_scale_of(exponents[f"score{i}"]), target,
                                                             bits)).sum()) for i in range(3))


def draw_case(rng: np.random.Generator, regime: str, target: str) -> dict:
    """One case; redrawn while more than MAX_PASSING cells would pass (esp-dl's candidate list is quadratic)."""
    while True:
        case = _draw(rng, regime, target)
        if case is not None:
            return case


def _draw(rng: np.random.Generator, regime: str, target: str) -> dict | None:
    geometry = _geometry(rng, regime)
    bits = int(rng.choice([8, 16]))
    lo, hi = (-128, 127) if bits == 8 else (-32768, 32767)
    if bits == 16 and rng.random() < 0.5:
        lo, hi = -int(rng.integers(200, 4000)), int(rng.integers(200, 4000))  # int16 layers rarely use the range
    classes = int(rng.choice([1, 2, 3, 5, 8, 80], p=[0.2, 0.2, 0.2, 0.2, 0.15, 0.05]))
    dtype = np.int8 if bits == 8 else np.int16
    outputs, exponents = {}, {}
    for i, (stride, _) in enumerate(YOLO11_STAGES):
        shape = (-(-geometry.dst_height // stride), -(-geometry.dst_width // stride))
        outputs[f"box{i}"] = _box_logits(rng, regime, shape, lo, hi).astype(dtype)
        outputs[f"score{i}"] = _score_logits(rng, regime, shape, classes, lo, hi).astype(dtype)
        exponents[f"box{i}"] = int(rng.integers(-12, 3)) if bits == 16 else int(rng.integers(-8, 2))
        exponents[f"score{i}"] = int(rng.integers(-12, 2)) if bits == 16 else int(rng.integers(-7, 1))
    thr = None
    if regime == "threshold-ties":
        thr = _tie_threshold(rng, exponents["score0"])
    if thr is None:
        values = np.concatenate([outputs[f"score{i}"].ravel().astype(np.float64) * 2.0 ** exponents[f"score{i}"]
                                 for i in range(3)])
        wanted = int(rng.integers(0, min(400, values.size) + 1))
        logit = np.sort(values)[::-1][min(wanted, values.size - 1)] + rng.uniform(-0.5, 0.5) * 2.0 ** exponents["score0"]
        thr = float(np.clip(_sigmoid(logit), 1e-6, 1 - 1e-6))
    while _passing(outputs, exponents, thr, target, bits) > MAX_PASSING:
        if thr >= 1 - 2e-7:
            return None
        thr = float(np.clip(1 - (1 - thr) / 2, thr, 1 - 1e-7))
    nms = float(rng.choice(NMS_CHOICES)) if rng.random() < 0.6 else float(rng.uniform(0, 1))
    top_k = int(rng.choice(TOP_K_CHOICES)) if rng.random() < 0.5 else int(rng.integers(1, 30))
    return {"outputs": outputs, "exponents": exponents, "geometry": geometry, "score_thr": thr, "nms_thr": nms,
            "top_k": top_k, "bits": bits, "classes": classes}


def describe(case: dict) -> str:
    shapes = {n: tuple(case["outputs"][n].shape) for n in OUTPUT_NAMES}
    return (f"bits {case['bits']}, shapes {shapes}, exponents {case['exponents']}, {case['geometry']}, score_thr "
            f"{case['score_thr']!r}, nms_thr {case['nms_thr']!r}, top_k {case['top_k']}")


def compare(espdl_cpp, case: dict, target: str) -> tuple[str | None, int]:
    """(None, candidates) when host.chip and esp-dl agree, else (what differs, candidates)."""
    args = (case["outputs"], case["exponents"], case["geometry"], target, case["score_thr"], case["nms_thr"],
            case["top_k"])
    ours = python_postprocess(*args)
    theirs = espdl_cpp.postprocess(*args)
    a, b = ours.candidates, theirs.candidates
    if ours.thresholds != theirs.thresholds:
        return f"thresholds {ours.thresholds} != esp-dl {theirs.thresholds}", len(a)
    if len(a) != len(b):
        return f"{len(a)} candidates != esp-dl {len(b)}", len(a)
    if not np.array_equal(a.category, b.category):
        return "candidate categories (order) differ", len(a)
    if not np.array_equal(a.score.view(np.uint32), b.score.view(np.uint32)):
        i = int(np.flatnonzero(a.score.view(np.uint32) != b.score.view(np.uint32))[0])
        return f"candidate {i} score {a.score[i]!r} != esp-dl {b.score[i]!r}", len(a)
    if not np.array_equal(a.box, b.box):
        i = int(np.flatnonzero((a.box != b.box).any(axis=1))[0])
        return f"candidate {i} box {a.box[i].tolist()} != esp-dl {b.box[i].tolist()} (dfl {a.dfl[i].tolist()})", len(a)
    if not np.array_equal(ours.kept, theirs.kept):
        return f"NMS keeps {ours.kept.tolist()[:20]} != esp-dl {theirs.kept.tolist()[:20]}", len(a)
    if ours.boxes != theirs.boxes:
        return "final boxes differ", len(a)
    return None, len(a)


@pytest.fixture
def memoised_inverse_sigmoid(monkeypatch):
    """host.chip's scalar inverse_sigmoid (a float32 logf in numpy, ~0.5 ms) runs once per threshold instead of
    once per stage: the same pure function, memoised, so 10,000 cases take seconds less each."""
    monkeypatch.setattr(chip_postprocess, "inverse_sigmoid", functools.lru_cache(maxsize=4096)(
        chip_postprocess.inverse_sigmoid))


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_postprocess_equals_espdl(espdl_cpp, target, record_property, memoised_inverse_sigmoid) -> None:
    counts: Counter = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(regime=st.sampled_from(REGIMES), seed=st.integers(0, 2**63 - 1))
    def check(regime: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(BATCH):
            case = draw_case(rng, regime, target)
            problem, candidates = compare(espdl_cpp, case, target)
            counts["cases"] += 1
            counts["candidates"] += candidates
            assert problem is None, f"{target} {regime}: {problem}\ncase: {describe(case)}"

    check()
    record_property("cases", counts["cases"])
    record_property("candidates", counts["candidates"])
    assert counts["cases"] >= CASES


@pytest.mark.parametrize("target", TARGETS)
def test_postprocess_refuses_quadratic_candidate_lists(espdl_cpp, target) -> None:
    """Beyond MAX_CANDIDATES the C++ postprocess refuses, naming the count, instead of running for minutes."""
    outputs = {n: np.full((1, 8, 8, 64 if n.startswith("box") else 200), 100, np.int8) for n in OUTPUT_NAMES}
    exponents = {n: -4 for n in OUTPUT_NAMES}
    with pytest.raises(espdl_cpp.TooManyCandidates, match="38400 cells pass"):
        espdl_cpp.postprocess(outputs, exponents, letterbox_geometry(64, 64, 64, 64), target, 0.25, 0.7, 10)


def test_mixed_output_widths_are_refused(espdl_cpp) -> None:
    """esp-dl reads all six outputs with box0's element type: int8 boxes with int16 scores cannot run."""
    outputs = {n: np.zeros((1, 2, 2, 64 if n.startswith("box") else 3), np.int8 if n.startswith("box") else np.int16)
               for n in OUTPUT_NAMES}
    with pytest.raises(HarnessError, match="box0's element type"):
        espdl_cpp.postprocess(outputs, {n: -4 for n in OUTPUT_NAMES}, letterbox_geometry(16, 16, 16, 16),
                              "esp32p4", 0.25, 0.7, 10)
