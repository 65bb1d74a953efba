"""A deliberately wrong device is caught and the divergence is blamed on the right stage."""

from __future__ import annotations

import pytest

from host.reference.reference import reference
from host.verdict import Tolerance, compare_boxes, diagnose


@pytest.fixture(scope="module")
def tiny_reference(tiny_model, test_rgb):
    return reference(test_rgb, tiny_model, "esp32p4")


def _verdict(dut, ref, rgb):
    got = dut.detect(rgb)
    boxes = compare_boxes(got.boxes, ref.boxes, Tolerance())
    return boxes, diagnose(dut.dump(), ref.input_tensor, ref.input_exponent, ref.raw.tensors, ref.raw.exponents, boxes)


def test_honest_sim_agrees_at_every_stage(open_tiny_sim, tiny_reference, test_rgb) -> None:
    boxes, verdict = _verdict(open_tiny_sim(), tiny_reference, test_rgb)
    assert len(tiny_reference.boxes) > 0  # the comparison is about real boxes
    assert boxes.equal, boxes.summary()
    assert verdict.stage == "none", verdict.message


@pytest.mark.parametrize("fault, stage", [
    ("perturb_boxes", "postprocess"),
    ("preprocess_offset", "input"),
    ("corrupt_output=score0", "outputs"),
])
def test_wrong_device_is_blamed_on_the_right_stage(open_tiny_sim, tiny_reference, test_rgb, fault, stage) -> None:
    boxes, verdict = _verdict(open_tiny_sim(fault), tiny_reference, test_rgb)
    assert verdict.stage == stage, verdict.message
    if stage == "postprocess":
        assert not boxes.equal and "box 0" in boxes.summary()


def test_tolerant_comparison_accepts_a_one_pixel_shift(open_tiny_sim, tiny_reference, test_rgb) -> None:
    got = open_tiny_sim("perturb_boxes").detect(test_rgb)
    assert not compare_boxes(got.boxes, tiny_reference.boxes, Tolerance()).equal
    assert compare_boxes(got.boxes, tiny_reference.boxes, Tolerance(iou=0.8)).equal
