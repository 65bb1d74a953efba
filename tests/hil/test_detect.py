"""Detection on every test image: the device's boxes equal the host reference's, stage by stage."""

from pathlib import Path

import pytest

from host.chip.preprocess import load_image
from host.report.html import overlay
from host.verdict import compare_boxes, diagnose

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


def _wire_boxes(boxes) -> list[dict]:
    return [{"category": b.category, "score": b.score, "box": [b.x1, b.y1, b.x2, b.y2]} for b in boxes]


def test_boxes_match_reference(hil, hil_record, hil_image: Path) -> None:
    rgb = load_image(hil_image)
    ref = hil.reference(hil_image)
    got = hil.dut.detect(rgb, **hil.thresholds())
    boxes = compare_boxes(got.boxes, ref.boxes, hil.tolerance(), score_floor=hil.opt("score_thr"))
    verdict = None
    if not boxes.equal or hil.opt("hil_dump") == "always":
        dump = hil.dut.dump()
        verdict = diagnose(dump, ref.input_tensor, ref.input_exponent, ref.raw.tensors, ref.raw.exponents, boxes)
    stage = verdict.to_json() if verdict else {"stage": "none", "message": "boxes equal (tensors not fetched)",
                                                "tensors": []}
    device_boxes = _wire_boxes(got.boxes)
    reference_boxes = [b.to_dict() for b in ref.boxes]
    picture = overlay(rgb, device_boxes, reference_boxes, hil.results.dir / "images" / f"{hil_image.stem}.png")
    hil_record.add("detect", hil_image.stem, image=hil_image.name, passed=boxes.equal, verdict=stage,
                   device_boxes=device_boxes, reference_boxes=reference_boxes, stage_us=got.stage_us,
                   latency_label=hil.dut.latency_label, overlay=str(picture.relative_to(hil.results.dir)))
    assert boxes.equal, f"{hil_image.name}: {stage['message']}"
