"""A self-contained HTML report: the session's provenance, the verdict per image (failures inline with their
pictures, agreeing images on linked pages of PAGE_SIZE), the latency table, and the accuracy section of a
dataset run. Opens from disk; stays usable for thousands of images.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

DEVICE_COLOUR = (230, 40, 40)
REFERENCE_COLOUR = (40, 200, 60)
TRUTH_COLOUR = (40, 90, 230)
PAGE_SIZE = 100
STYLE = ("<style>body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse;margin:.5em 0}"
         "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px} .pass{color:#187a2f} .fail{color:#b3261e}"
         ".banner{background:#fff3cd;padding:.6em;border:1px solid #e0c060} .img{display:flex;gap:1em}</style>")


def overlay(rgb: np.ndarray, device_boxes: list, reference_boxes: list, path: Path, truth: list | None = None) -> Path:
    """Save the image with ground truth (blue, if given), reference boxes (green, thick) and device boxes (red,
    thin) drawn on it."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    layers = [(truth or [], TRUTH_COLOUR, 2), (reference_boxes, REFERENCE_COLOUR, 3), (device_boxes, DEVICE_COLOUR, 1)]
    for boxes, colour, width in layers:
        for b in boxes:
            draw.rectangle(list(b["box"]), outline=colour, width=width)
            draw.text((b["box"][0] + 2, b["box"][1] + 1), f"{b['category']}:{b['score']:.2f}", fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _boxes_table(boxes: list[dict]) -> str:
    return _table([[b["category"], f"{b['score']:.6f}", b["box"]] for b in boxes], ["cat", "score", "box"])


def _detection(r: dict[str, Any]) -> list[str]:
    status = "pass" if r["passed"] else "fail"
    board = f" on {_e(r['board'])}" if r.get("board") else ""
    parts = [f"<h3 class='{status}'>{_e(r['image'])}: {status.upper()}{board} - stage: {_e(r['verdict']['stage'])}</h3>",
             f"<p>{_e(r['verdict']['message'])}</p>", "<div class='img'>"]
    if r.get("overlay"):
        parts.append(f"<img src='{_e(r['overlay'])}' alt='overlay'>")
    if "device_boxes" in r:  # absent when the image could not be read
        parts.append("<div><b>device</b> (red)" + _boxes_table(r["device_boxes"]) + "<b>reference</b> (green)"
                     + _boxes_table(r["reference_boxes"]) + "</div>")
    parts.append("</div>")
    if r["verdict"].get("tensors"):
        parts.append(_table([[t["name"], t["equal"], t["detail"]] for t in r["verdict"]["tensors"]],
                            ["tensor", "equal", "detail"]))
    return parts


def _page(title: str, body: list[str]) -> str:
    return "\n".join([f"<!doctype html><meta charset='utf-8'><title>{_e(title)}</title>{STYLE}", *body])


def _detections(report_dir: Path, detections: list[dict[str, Any]]) -> list[str]:
    """Failures inline; agreeing images on pages of PAGE_SIZE linked from here."""
    passed = [r for r in detections if r["passed"]]
    failed = [r for r in detections if not r["passed"]]
    parts = [f"<h2>Detection: {len(passed)} of {len(detections)} images agree</h2>"]
    for r in failed:
        parts += _detection(r)
    pages = [passed[i:i + PAGE_SIZE] for i in range(0, len(passed), PAGE_SIZE)]
    if len(pages) == 1 and not failed and len(passed) <= PAGE_SIZE:
        for r in passed:
            parts += _detection(r)
        return parts
    links = []
    for n, chunk in enumerate(pages, start=1):
        name = f"report_agreeing_{n}.html"
        body = [f"<h1>Agreeing images {chunk[0]['image']} .. {chunk[-1]['image']}</h1>", "<p><a href='report.html'>"
                "back to the report</a></p>"]
        for r in chunk:
            body += _detection(r)
        (report_dir / name).write_text(_page(f"agreeing images, page {n}", body))
        links.append(f"<a href='{name}'>page {n} ({len(chunk)})</a>")
    if links:
        parts.append("<p>Agreeing images: " + " · ".join(links) + "</p>")
    return parts


def _accuracy(report_dir: Path, accuracy: dict[str, Any]) -> list[str]:
    engines = [e for e in ("device", "reference", "float") if accuracy.get(e)]
    parts = [f"<h2>Accuracy on {accuracy['images']} labelled images</h2>",
             _table([[e, accuracy[e]["map50_95"], accuracy[e]["map50"], accuracy[e].get("detections", "")]
                     for e in engines], ["engine", "mAP50-95", "mAP50", "detections"]),
             _table([[name, g["verdict"].upper(), g["message"]] for name, g in accuracy["gates"].items()],
                    ["gate", "verdict", "figures"])]
    if accuracy.get("images_per_board"):
        parts.append(_table([[b, n] for b, n in accuracy["images_per_board"].items()], ["board", "images"]))
    per_class = accuracy["device"].get("per_class", {})
    if per_class:
        rows = [[cls, v["gt"], v["ap50_95"], v["ap50"],
                 accuracy["reference"]["per_class"].get(cls, {}).get("ap50_95", ""),
                 (accuracy.get("float") or {}).get("per_class", {}).get(cls, {}).get("ap50_95", "")]
                for cls, v in sorted(per_class.items(), key=lambda kv: kv[1]["ap50_95"])]
        parts.append("<h3>Per class (worst first)</h3>" + _table(
            rows, ["class", "objects", "device AP50-95", "device AP50", "reference AP50-95", "float AP50-95"]))
    plot = _pr_plot(report_dir / "accuracy_pr.png", {e: accuracy[e].get("pr_curve_iou50", []) for e in engines})
    if plot is not None:
        parts.append(f"<img src='{plot.name}' alt='precision-recall at IoU 0.5'>")
    if accuracy.get("worst_images"):
        parts.append("<h3>Worst images first (device against ground truth: blue truth, green reference, red device)"
                     "</h3>" + "".join(
                         f"<p><a href='{_e(w['overlay'])}'>{_e(w['image'])}</a>: {w['missed']} missed, {w['false']} "
                         f"false{' on ' + _e(w['board']) if w.get('board') else ''}</p>" for w in accuracy["worst_images"]))
    if accuracy.get("problems"):
        parts.append(f"<h3>Dataset problems ({len(accuracy['problems'])})</h3>" + _table(
            [[p["image"], p["kind"], p["detail"]] for p in accuracy["problems"][:200]], ["image", "problem", "detail"]))
    return parts


def _pr_plot(path: Path, curves: dict[str, list[float]]) -> Path | None:
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, precision in curves.items():
        ax.plot(np.linspace(0, 1, len(precision)), precision, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (IoU 0.5, all classes)")
    ax.set_ylim(0, 1.02)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _device_logs(report_dir: Path, session: dict[str, Any]) -> list[str]:
    """A line under the title linking the device logs: the session's own (provenance `device_log`) and, in a
    pytest-xdist run's report, each worker's."""
    named = session.get("device_log")
    found = [named] if named and (report_dir / named).is_file() else []
    found += [p.relative_to(report_dir).as_posix()
              for p in [report_dir / "device.log", *sorted(report_dir.glob("gw*/device.log"))] if p.is_file()]
    links = [f"<a href='{_e(link)}'>{_e(link)}</a>" for link in dict.fromkeys(found)]
    return [f"<p>Device log (everything the device printed outside protocol records): {' · '.join(links)}</p>"] \
        if links else []


def write_report(report_dir: Path, session: dict[str, Any], records: list[dict[str, Any]],
                 accuracy: dict[str, Any] | None = None) -> Path:
    report_dir = Path(report_dir)
    parts = ["<h1>YOLO11n hardware-in-the-loop report</h1>"]
    if session.get("latency_label") != "measured":
        parts.append(f"<p class='banner'><b>DUT: {_e(session.get('dut_kind'))}</b> - {_e(session.get('dut_reason', ''))}"
                     f". Latencies are {_e(session.get('latency_label'))}, not chip measurements.</p>")
    parts += _device_logs(report_dir, session)
    parts.append("<h2>Session</h2>" + _table([[k, v] for k, v in session.items()], ["field", "value"]))
    if accuracy:
        parts += _accuracy(report_dir, accuracy)
    detections = [r for r in records if r["kind"] == "detect"]
    if detections:
        parts += _detections(report_dir, detections)
    for r in (r for r in records if r["kind"] == "latency"):
        parts.append(f"<h2>Latency ({_e(r['label'])}, {r['runs']} runs)</h2>")
        rows = [[stage, *(f"{s[k] / 1000:.3f}" for k in ("median", "p90", "min", "max", "mad"))]
                for stage, s in r["stages"].items()]
        parts.append(_table(rows, ["stage", "median ms", "p90 ms", "min ms", "max ms", "MAD ms"]))
        for plot in r.get("plots", []):
            parts.append(f"<img src='{_e(plot)}' alt='latency distribution'>")
    others = [r for r in records if r["kind"] not in ("detect", "latency", "accuracy-image")]
    if others:
        parts.append("<h2>Other checks</h2>" + _table(
            [[r["test"], r["kind"], r.get("board", ""), r.get("passed"), r.get("detail", "")] for r in others],
            ["test", "check", "board", "passed", "detail"]))
    out = report_dir / "report.html"
    out.write_text(_page("YOLO11n HIL report", parts))
    return out
