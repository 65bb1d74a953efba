"""Detection on every test image: the device's boxes equal the host reference's, stage by stage."""

from pathlib import Path

import pytest

from host.hil.state import load_test_image
from host.report.html import overlay
from host.verdict import compare_boxes, diagnose

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


def test_boxes_match_reference(hil_state, hil_options, hil_dut, hil_reference, hil_record, hil_tolerance,
                               hil_image: Path) -> None:
    try:
        rgb = load_test_image(hil_state, hil_image)
    except Exception as exc:
        hil_record.add("detect", hil_image.stem, image=hil_image.name, passed=False,
                       verdict={"stage": "image", "message": f"unreadable image: {exc}", "tensors": []})
        raise
    ref = hil_reference(hil_image)
    got = hil_dut.detect(rgb, hil_options.thresholds)
    boxes = compare_boxes(got.boxes, ref.boxes, hil_tolerance, score_floor=hil_options.thresholds.score_thr)
    verdict = None
    if not boxes.equal or hil_options.hil_dump == "always":
        dump = hil_dut.dump()
        verdict = diagnose(dump, ref.input_tensor, ref.input_exponent, ref.raw.tensors, ref.raw.exponents, boxes)
    stage = verdict.to_json() if verdict else {"stage": "none", "message": "boxes equal (tensors not fetched)",
                                                "tensors": []}
    device_boxes = [b.to_dict() for b in got.boxes]
    reference_boxes = [b.to_dict() for b in ref.boxes]
    picture = overlay(rgb, device_boxes, reference_boxes, hil_record.dir / "images" / f"{hil_image.stem}.png")
    hil_record.add("detect", hil_image.stem, image=hil_image.name, passed=boxes.equal, verdict=stage,
                   device_boxes=device_boxes, reference_boxes=reference_boxes, stage_us=got.stage_us,
                   latency_label=hil_dut.latency_label, overlay=str(picture.relative_to(hil_record.dir)))
    assert boxes.equal, f"{hil_image.name}: {stage['message']}"
