"""The HTML report: readable from disk, every image it references written, the sim labelled as such."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from host.latency.plots import distribution_plot, trend_plot
from host.report.html import overlay, write_report
from host.report.results import ResultsWriter
from tests.host.builders import latency_result


def test_report_references_written_images(tmp_path: Path) -> None:
    session = {"dut_kind": "sim", "dut_reason": "no board found", "latency_label": "simulated"}
    writer = ResultsWriter(tmp_path, session)
    rgb = np.zeros((40, 60, 3), dtype=np.uint8)
    boxes = [{"category": 0, "score": 0.9, "box": [1, 2, 30, 20]}]
    pic = overlay(rgb, boxes, boxes, tmp_path / "images" / "a.png")
    writer.add("detect", "a", image="a.png", passed=True, verdict={"stage": "none", "message": "ok", "tensors": []},
               device_boxes=boxes, reference_boxes=boxes, overlay=str(pic.relative_to(tmp_path)))
    lat = latency_result(0)
    dist = distribution_plot(lat, tmp_path / "latency_distribution.png", "simulated")
    trend = trend_plot({"history": [{"medians_us": {"pre": 1, "model": 2, "post": 3}}]},
                       {"pre": 1, "model": 2, "post": 3}, tmp_path / "latency_trend.png")
    from host.latency.measure import summary

    writer.add("latency", "bench", label="simulated", runs=100, stages=summary(lat), plots=[dist.name, trend.name])
    page = write_report(tmp_path, session, writer.records).read_text()
    srcs = re.findall(r"<img src='([^']+)'", page)
    assert sorted(srcs) == sorted(["images/a.png", "latency_distribution.png", "latency_trend.png"])
    assert all((tmp_path / s).stat().st_size > 100 for s in srcs)
    assert "DUT: sim" in page and "simulated" in page and "median ms" in page
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3  # session + two results, written as they happened
    assert writer.finish().is_file()
