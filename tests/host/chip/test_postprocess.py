"""ESP-DL yolo11 postprocess: threshold, DFL decode, ordering, NMS, top-k, clamping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.errors import HarnessError
from host.chip.postprocess import (
    OUTPUT_NAMES,
    clamp_boxes,
    dfl_distances,
    inverse_sigmoid,
    nms,
    postprocess,
    score_threshold,
    sigmoid,
    sigmoid_of_quantized,
)
from host.chip.preprocess import letterbox_geometry

f32 = np.float32
GRIDS = (8, 4, 2)  # 64x64 input
NC = 3


def blank(score_exp=-2, box_exp=-2):
    outputs, exps = {}, {}
    for i, g in enumerate(GRIDS):
        outputs[f"score{i}"] = np.full((1, g, g, NC), -128, np.int8)
        outputs[f"box{i}"] = np.full((1, g, g, 64), -128, np.int8)
        exps[f"score{i}"], exps[f"box{i}"] = score_exp, box_exp
    return outputs, exps


def set_box(outputs, stage, y, x, bins):
    """One-hot DFL logits: side s peaks at bin bins[s] (distance == bin index in float32)."""
    logits = np.full((4, 16), -128, np.int8)
    for side, b in enumerate(bins):
        logits[side, b] = 127
    outputs[f"box{stage}"][0, y, x] = logits.reshape(64)


def test_threshold_value_and_strict_comparison():
    t = score_threshold(0.25, -2, "esp32p4")
    assert t == -4  # round(-logf(3) * 4) = round(-4.394)
    outputs, exps = blank()
    outputs["score0"][0, 0, 0, 0] = t  # exactly at the threshold: rejected
    outputs["score0"][0, 0, 1, 1] = t + 1  # one above: passes
    set_box(outputs, 0, 0, 1, (1, 1, 1, 1))
    g = letterbox_geometry(64, 64, 64, 64)
    res = postprocess(outputs, exps, g, "esp32p4")
    assert [(b.category, b.box) for b in res.boxes] == [(1, (4, 0, 20, 12))]  # cx 12, cy 4, d 1*8
    assert res.boxes[0].score == float(sigmoid_of_quantized(np.array([t + 1]), -2)[0])
    assert res.boxes[0].score == pytest.approx(0.3208, abs=1e-4)  # sigmoid(-0.75): the effective threshold
    assert res.thresholds == {"score0": -4, "score1": -4, "score2": -4}


def _tie_threshold(logit: float) -> float:
    """A float32 score threshold whose inverse_sigmoid is exactly `logit` (found next to sigmoid(logit))."""
    x0 = f32(1.0 / (1.0 + np.exp(-logit)))
    for d in range(-400, 401):
        x = f32(x0 + d * np.spacing(x0))
        if inverse_sigmoid(x) == f32(logit):
            return float(x)
    raise AssertionError(f"no float32 threshold maps exactly to {logit}")


def test_threshold_tie_rounds_per_target():
    thr = _tie_threshold(-1.875)  # times 4 (exponent -2) = -7.5, a tie
    assert score_threshold(thr, -2, "esp32p4") == -8  # half to even
    assert score_threshold(thr, -2, "esp32s3") == -7  # half up
    outputs, exps = blank()
    outputs["score0"][0, 0, 0, 0] = -7
    set_box(outputs, 0, 0, 0, (0, 0, 1, 1))
    g = letterbox_geometry(64, 64, 64, 64)
    assert len(postprocess(outputs, exps, g, "esp32p4", score_thr=thr).boxes) == 1  # -7 > -8
    assert len(postprocess(outputs, exps, g, "esp32s3", score_thr=thr).boxes) == 0  # -7 > -7 is false


def test_decode_maps_back_through_the_letterbox_and_clamps():
    g = letterbox_geometry(128, 80, 64, 64)
    assert g.border == (12, 12, 0, 0) and (g.inv_scale_x, g.inv_scale_y) == (2.0, 2.0)
    outputs, exps = blank()
    outputs["score0"][0, 3, 2, 2] = 20
    set_box(outputs, 0, 3, 2, (1, 2, 3, 4))  # centre (20, 28)
    res = postprocess(outputs, exps, g, "esp32p4")
    # x1 = (20 - 8) * 2, y1 = (28 - 16 - 12) * 2, x2 = (20 + 24) * 2, y2 = (28 + 32 - 12) * 2 = 96 -> 79
    assert res.candidates.box.tolist() == [[24, 0, 88, 96]]
    assert [b.box for b in res.boxes] == [(24, 0, 88, 79)]
    assert res.candidates.dfl.tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_negative_coordinates_truncate_toward_zero_then_clamp():
    g = letterbox_geometry(128, 80, 64, 64)
    outputs, exps = blank()
    outputs["score0"][0, 0, 0, 0] = 5
    set_box(outputs, 0, 0, 0, (15, 15, 15, 15))  # centre (4, 4), far past the top-left corner
    res = postprocess(outputs, exps, g, "esp32p4")
    x1, y1, x2, y2 = res.candidates.box[0]
    assert (x1, y1) == (int((4 - 120) * 2), int((4 - 120 - 12) * 2))
    assert res.boxes[0].box == (0, 0, 127, 79)


def test_order_is_descending_score_with_arrival_order_for_ties():
    outputs, exps = blank()
    # Equal logits in stages 2 and 0 (same exponent): stage 0 arrived first.
    outputs["score2"][0, 0, 0, 0] = 10
    outputs["score0"][0, 7, 7, 2] = 10
    outputs["score0"][0, 0, 5, 1] = 10  # same stage: row-major, y 0 before y 7
    outputs["score1"][0, 1, 1, 0] = 30  # highest score first whatever the stage
    outputs["score0"][0, 2, 2, 0] = 12
    outputs["score0"][0, 2, 2, 1] = 12  # one anchor, two classes: both reported
    g = letterbox_geometry(64, 64, 64, 64)
    res = postprocess(outputs, exps, g, "esp32p4", nms_thr=1.0, top_k=100)
    c = res.candidates
    got = list(zip(c.stage.tolist(), c.y.tolist(), c.x.tolist(), c.category.tolist()))
    assert got == [(1, 1, 1, 0), (0, 2, 2, 0), (0, 2, 2, 1), (0, 0, 5, 1), (0, 7, 7, 2), (2, 0, 0, 0)]
    assert all(np.diff(c.score) <= 0)


def test_nms_iou_convention_and_equality():
    boxes = np.array(
        [
            [0, 0, 9, 9],  # area 100 (+1 convention)
            [0, 0, 9, 7],  # IoU 80/100 = 0.8 > 0.7: suppressed
            [0, 0, 9, 6],  # IoU 70/100 = 0.7f, not > 0.7f: kept
            [10, 20, 19, 29],  # no overlap with the first
            [19, 20, 28, 29],  # one shared column with the previous: IoU 10/190, kept
        ]
    )
    assert nms(boxes, 0.7, 10).tolist() == [0, 2, 3, 4]
    assert nms(boxes, 0.0, 10).tolist() == [0, 3]  # any positive overlap suppresses


def test_nms_is_greedy_in_score_order():
    # 1 overlaps 0 and is suppressed; 2 overlapped only 1, so 2 survives.
    boxes = np.array([[0, 0, 9, 9], [3, 0, 12, 9], [8, 0, 17, 9]])
    assert nms(boxes, 0.3, 10).tolist() == [0, 2]


def test_top_k_cut_off():
    boxes = np.array([[i * 20, 0, i * 20 + 9, 9] for i in range(6)])
    assert nms(boxes, 0.7, 3).tolist() == [0, 1, 2]
    assert nms(boxes, 0.7, 1).tolist() == [0]
    assert nms(boxes, 0.7, 0).tolist() == [0]  # the device's loop keeps one box even for top_k 0
    assert nms(np.zeros((0, 4), np.int64), 0.7, 10).tolist() == []


def test_clamp_boxes():
    assert clamp_boxes(np.array([[-5, -1, 700, 430]]), 640, 427).tolist() == [[0, 0, 639, 426]]
    assert clamp_boxes(np.array([[800, 500, -3, -3]]), 640, 427).tolist() == [[639, 426, 0, 0]]


def _dfl_scalar(q: np.ndarray, exponent: int, model: str) -> float:
    """Scalar float32 transcription of dl_math::dfl_integral (as written, or as GCC -ffast-math built it)."""
    from host.chip.libm import expf

    x = [f32(v) * f32(2.0**exponent) for v in q]
    m = max(x)
    e = [expf(v - m) for v in x]
    s = f32(0)
    for v in e:
        s = f32(s + v)
    if model == "source":
        p = [f32(v / s) for v in e]
        acc = f32(0)
        for i, v in enumerate(p):
            acc = f32(acc + f32(v * f32(i)))
        return float(acc)
    r = f32(f32(1) / s)
    p = [f32(r * v) for v in e]
    fma = lambda a, b, c: f32(float(a) * b + float(c))  # noqa: E731  (product exact in double)
    acc = f32(p[3] * f32(3))
    acc = fma(p[2], 2, acc)
    acc = f32(p[1] + acc)
    for i in range(4, 16):
        acc = fma(p[i], i, acc)
    return float(acc)


@pytest.mark.parametrize("model", ["source", "gcc-fastmath"])
def test_dfl_vectorised_equals_scalar_order(model):
    rng = np.random.default_rng(3)
    q = rng.integers(-128, 128, size=(200, 4, 16))
    got = dfl_distances(q, -3, model)
    want = np.array([[_dfl_scalar(q[n, s], -3, model) for s in range(4)] for n in range(200)], dtype=f32)
    np.testing.assert_array_equal(got, want)


def test_sigmoid_table_equals_scalar():
    q = np.arange(-128, 128)
    for exp in (-4, -2, 0):
        np.testing.assert_array_equal(sigmoid_of_quantized(q, exp), sigmoid(q.astype(f32) * f32(2.0**exp)))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    src=st.tuples(st.integers(1, 400), st.integers(1, 400)),
    score_exp=st.integers(-4, 0),
    box_exp=st.integers(-4, 0),
    target=st.sampled_from(["esp32p4", "esp32s3"]),
    score_thr=st.floats(0.05, 0.95),
    top_k=st.integers(1, 20),
)
def test_postprocess_properties(seed, src, score_exp, box_exp, target, score_thr, top_k):
    rng = np.random.default_rng(seed)
    outputs, exps = blank(score_exp, box_exp)
    for i, g in enumerate(GRIDS):
        outputs[f"score{i}"] = rng.integers(-128, 128, size=(1, g, g, NC)).astype(np.int8)
        outputs[f"box{i}"] = rng.integers(-128, 128, size=(1, g, g, 64)).astype(np.int8)
    if max(src) > 64 * min(src):
        return
    geom = letterbox_geometry(src[0], src[1], 64, 64)
    res = postprocess(outputs, exps, geom, target, score_thr=score_thr, top_k=top_k)
    thr = score_threshold(score_thr, score_exp, target)
    floor = sigmoid_of_quantized(np.array([thr + 1]), score_exp)[0] if thr < 127 else np.inf
    scores = [b.score for b in res.boxes]
    assert len(res.boxes) <= max(top_k, 1)
    assert all(s >= floor for s in scores), (scores, floor)  # nothing below the effective threshold
    assert scores == sorted(scores, reverse=True)
    for b in res.boxes:  # always inside the source image
        x1, y1, x2, y2 = b.box
        assert 0 <= x1 < src[0] and 0 <= x2 < src[0] and 0 <= y1 < src[1] and 0 <= y2 < src[1]
        assert 0 <= b.category < NC
    assert len(res.candidates) == sum(int((outputs[f"score{i}"] > thr).sum()) for i in range(3))


@pytest.mark.parametrize("drop", OUTPUT_NAMES)
def test_missing_output_is_a_clear_error(drop):
    outputs, exps = blank()
    del outputs[drop]
    with pytest.raises(HarnessError, match=drop):
        postprocess(outputs, exps, letterbox_geometry(64, 64, 64, 64), "esp32p4")


def test_bad_output_tensors_and_settings():
    g = letterbox_geometry(64, 64, 64, 64)
    outputs, exps = blank()
    outputs["box1"] = outputs["box1"].reshape(1, 4, 4, 4, 16)
    with pytest.raises(HarnessError, match="NHWC"):
        postprocess(outputs, exps, g, "esp32p4")
    outputs, exps = blank()
    outputs["score2"] = outputs["score2"].astype(np.float32)
    with pytest.raises(HarnessError, match="dtype"):
        postprocess(outputs, exps, g, "esp32p4")
    outputs, exps = blank()
    with pytest.raises(HarnessError, match="probability"):
        postprocess(outputs, exps, g, "esp32p4", score_thr=1.5)
    with pytest.raises(HarnessError, match="float model"):
        postprocess(outputs, exps, g, "esp32p4", float_model="pairwise")


def _nms_list_walk(boxes, nms_thr, top_k):
    """Transcription of DetectPostprocessor::nms on a Python list standing in for std::list."""
    items = list(enumerate(boxes.tolist()))
    k = 0
    kept_number = 0
    while k < len(items):
        kept_number += 1
        if kept_number >= top_k:
            del items[k + 1 :]
            break
        kb = items[k][1]
        kept_area = (kb[2] - kb[0] + 1) * (kb[3] - kb[1] + 1)
        j = k + 1
        while j < len(items):
            ob = items[j][1]
            ih = min(kb[3], ob[3]) - max(kb[1], ob[1]) + 1
            iw = min(kb[2], ob[2]) - max(kb[0], ob[0]) + 1
            if ih > 0 and iw > 0:
                other_area = (ob[2] - ob[0] + 1) * (ob[3] - ob[1] + 1)
                inter = ih * iw
                if f32(inter) / f32(kept_area + other_area - inter) > f32(nms_thr):
                    del items[j]
                    continue
            j += 1
        k += 1
    return [i for i, _ in items]


@pytest.mark.parametrize("seed", range(3))
def test_chunked_nms_equals_the_list_walk(seed):
    rng = np.random.default_rng(seed)
    n = 150
    xy = rng.integers(-20, 100, size=(n, 2))
    wh = rng.integers(0, 40, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    for thr in (0.0, 0.3, 0.7):
        for top_k in (1, 5, 50, 1000):
            want = _nms_list_walk(boxes, thr, top_k)
            assert nms(boxes, thr, top_k, chunk=7).tolist() == want, (thr, top_k)
            assert nms(boxes, thr, top_k).tolist() == want
