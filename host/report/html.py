"""A self-contained HTML report: per image the picture with device and reference boxes overlaid, the
stage verdict and the box lists; the latency table; the session's provenance. Opens from disk.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

DEVICE_COLOUR = (230, 40, 40)
REFERENCE_COLOUR = (40, 200, 60)


def overlay(rgb: np.ndarray, device_boxes: list, reference_boxes: list, path: Path) -> Path:
    """Save the image with reference boxes (green, thick) and device boxes (red, thin) drawn on it."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    for boxes, colour, width in ((reference_boxes, REFERENCE_COLOUR, 3), (device_boxes, DEVICE_COLOUR, 1)):
        for b in boxes:
            draw.rectangle(list(b["box"]), outline=colour, width=width)
            draw.text((b["box"][0] + 2, b["box"][1] + 1), f"{b['category']}:{b['score']:.2f}", fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _boxes_table(boxes: list[dict]) -> str:
    return _table([[b["category"], f"{b['score']:.6f}", b["box"]] for b in boxes], ["cat", "score", "box"])


def write_report(report_dir: Path, session: dict[str, Any], records: list[dict[str, Any]]) -> Path:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>YOLO11n HIL report</title><style>",
        "body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse;margin:.5em 0}",
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px} .pass{color:#187a2f} .fail{color:#b3261e}",
        ".banner{background:#fff3cd;padding:.6em;border:1px solid #e0c060} .img{display:flex;gap:1em}",
        "</style>",
        "<h1>YOLO11n hardware-in-the-loop report</h1>",
    ]
    if session.get("latency_label") != "measured":
        parts.append(f"<p class='banner'><b>DUT: {html.escape(str(session.get('dut_kind')))}</b> - "
                     f"{html.escape(str(session.get('dut_reason', '')))}. Latencies are "
                     f"{html.escape(str(session.get('latency_label')))}, not chip measurements.</p>")
    parts.append("<h2>Session</h2>" + _table([[k, v] for k, v in session.items()], ["field", "value"]))
    detections = [r for r in records if r["kind"] == "detect"]
    if detections:
        passed = sum(1 for r in detections if r["passed"])
        parts.append(f"<h2>Detection: {passed} of {len(detections)} images agree</h2>")
        for r in detections:
            status = "pass" if r["passed"] else "fail"
            parts.append(f"<h3 class='{status}'>{html.escape(r['image'])}: {status.upper()} "
                         f"- stage: {html.escape(r['verdict']['stage'])}</h3>")
            parts.append(f"<p>{html.escape(r['verdict']['message'])}</p>")
            parts.append("<div class='img'>")
            if r.get("overlay"):
                parts.append(f"<img src='{html.escape(r['overlay'])}' alt='overlay'>")
            if "device_boxes" in r:  # absent when the image could not be read
                parts.append("<div><b>device</b> (red)" + _boxes_table(r["device_boxes"]) + "<b>reference</b> "
                             "(green)" + _boxes_table(r["reference_boxes"]) + "</div>")
            parts.append("</div>")
            if r["verdict"].get("tensors"):
                parts.append(_table([[t["name"], t["equal"], t["detail"]] for t in r["verdict"]["tensors"]],
                                    ["tensor", "equal", "detail"]))
    latency = [r for r in records if r["kind"] == "latency"]
    for r in latency:
        parts.append(f"<h2>Latency ({html.escape(str(r['label']))}, {r['runs']} runs)</h2>")
        rows = [[stage, *(f"{s[k] / 1000:.3f}" for k in ("median", "p90", "min", "max", "mad"))]
                for stage, s in r["stages"].items()]
        parts.append(_table(rows, ["stage", "median ms", "p90 ms", "min ms", "max ms", "MAD ms"]))
        for plot in r.get("plots", []):
            parts.append(f"<img src='{html.escape(plot)}' alt='latency distribution'>")
    others = [r for r in records if r["kind"] not in ("detect", "latency")]
    if others:
        parts.append("<h2>Other checks</h2>" + _table(
            [[r["test"], r["kind"], r.get("passed"), r.get("detail", "")] for r in others],
            ["test", "check", "passed", "detail"]))
    out = Path(report_dir) / "report.html"
    out.write_text("\n".join(parts))
    return out
