"""The end of a session: merge what every worker journaled, score the whole labelled set, judge the gates.

Under pytest-xdist each worker journals its share of the images in its own folder; the figures and gates
are about the whole set, so they are computed once, here, from every journal - the same way whether one
process ran everything, several workers on several boards did, or an interrupted run was resumed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from host.accuracy import baseline as baselines
from host.accuracy.gates import GateVerdict, against_baseline, device_equals_reference, max_map_drop
from host.dataset import LabelledSet, Problem
from host.report.results import read_journal
from host.runs.dataset import RECORD, summarize


def journals(report_dir: Path) -> list[dict[str, Any]]:
    """Every record of the session's journals: the folder's own and its workers' (gw0, gw1, ...)."""
    records = read_journal(report_dir / "results.jsonl")
    for worker in sorted(report_dir.glob("gw*/results.jsonl")):
        records += read_journal(worker)
    return records


def accuracy_result(dataset: LabelledSet, records: list[dict[str, Any]], setup_json: dict, exact: bool,
                    max_drop: float | None, baseline_dir: Path,
                    tolerance: float) -> tuple[dict[str, Any], list[GateVerdict]] | None:
    """accuracy.json's content from the journaled per-image records of this session's setups (the setup keys
    its dataset shares ran with: one per DUT kind in a mixed farm); None when no share ran."""
    keys = {r.get("setup") for r in records if r.get("kind") == "dataset-share"}
    per_image = {r["test"]: r for r in records if r.get("kind") == RECORD and r.get("setup") in keys}
    if not per_image:
        return None
    unreadable = {r["test"]: r.get("detail", "") for r in records if r.get("kind") == "dataset-problem"}
    problems = list(dataset.problems) + [Problem(name, "unreadable_image", detail)
                                         for name, detail in sorted(unreadable.items())]
    run = summarize(dataset, per_image, problems)
    gates = [device_equals_reference(run, exact), max_map_drop(run, max_drop),
             against_baseline(run, baselines.find(setup_json, baseline_dir), tolerance)]
    boards: dict[str, int] = {}
    for record in per_image.values():
        board = str(record.get("board", "unknown"))
        boards[board] = boards.get(board, 0) + 1
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    resumed = sum(int(r.get("resumed", 0)) for r in records if r.get("kind") == "dataset-share")
    result = {
        "setup": setup_json,
        "device": run.device.to_json(), "reference": run.reference.to_json(),
        "float": run.float.to_json() if run.float else None,
        "gates": {g.name: g.to_json() for g in gates},
        "images": run.images, "images_per_board": boards, "resumed": resumed,
        "detect_path": sorted({str(r.get("detect_path")) for r in records if r.get("kind") == "dataset-share"}),
        "problems": [p.to_json() for p in problems], "problem_counts": counts,
    }
    return result, gates


def worst_images(dataset: LabelledSet, records: list[dict[str, Any]], report_dir: Path,
                 count: int = 20) -> list[dict[str, Any]]:
    """The images the device got most wrong (missed objects + false boxes at IoU 0.5, same class), worst first,
    each drawn with ground truth (blue), reference (green) and device (red) boxes for the report."""
    from host.chip.preprocess import load_image
    from host.report.html import overlay
    from host.verdict import iou

    items = {item.image.name: item for item in dataset.items}
    scored = []
    for r in records:
        if r.get("kind") != RECORD or r["test"] not in items:
            continue
        truth = [(g.category, (g.x1, g.y1, g.x2, g.y2)) for g in items[r["test"]].boxes]
        found = [(b["category"], tuple(b["box"])) for b in r["device_boxes"]]
        unmatched = list(range(len(found)))
        missed = 0
        for cls, box in truth:
            hit = next((j for j in unmatched if found[j][0] == cls and iou(found[j][1], box) >= 0.5), None)
            if hit is None:
                missed += 1
            else:
                unmatched.remove(hit)
        if missed or unmatched:
            scored.append((missed + len(unmatched), missed, len(unmatched), r))
    scored.sort(key=lambda t: (-t[0], t[3]["test"]))
    out = []
    for errors, missed, false, r in scored[:count]:
        name = r["test"]
        try:
            rgb = load_image(items[name].image)
        except Exception:  # the report shows what it can; the figures do not depend on the picture
            continue
        truth_boxes = [{"category": g.category, "score": 1.0, "box": [int(g.x1), int(g.y1), int(g.x2), int(g.y2)]}
                       for g in items[name].boxes]
        picture = overlay(rgb, r["device_boxes"], r["reference_boxes"], report_dir / "worst" / f"{Path(name).stem}.png",
                          truth=truth_boxes)
        out.append({"image": name, "errors": errors, "missed": missed, "false": false, "board": r.get("board"),
                    "overlay": str(picture.relative_to(report_dir))})
    return out


def write_json(path: Path, data: dict[str, Any]) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)
    return path
