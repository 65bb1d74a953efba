"""A labelled set through the DUT and the reference: per-image records in the journal, then mAP and gates.

Pipelined on the host: while the device computes image k, a worker thread reads image k+1 and computes
its reference (and float) detections, so host compute hides behind device time. Resumable: every image's
result is one fsync'd journal line (results.jsonl) tagged with the run's setup key; `resume` skips the
images an earlier run of the same setup finished, so a kill loses at most the image in flight.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from host.accuracy.coco import Accuracy, evaluate
from host.chip.detection import Box, Thresholds
from host.dataset import Item, LabelledSet, Problem
from host.dut.dut import Dut
from host.errors import HarnessError
from host.report.results import ResultsWriter
from host.verdict import Tolerance, compare_boxes, diagnose

RECORD = "accuracy-image"


@dataclass(frozen=True)
class RunSetup:
    """What makes two runs' per-image results interchangeable (the resume key)."""

    model_sha256: str
    dut_kind: str
    target: str
    thresholds: Thresholds

    def key(self) -> str:
        text = json.dumps({"model": self.model_sha256, "dut": self.dut_kind, "target": self.target,
                           "thresholds": self.thresholds.as_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class HostSide:
    """What the host computes for one image: its pixels, the reference's result, the float model's boxes."""

    item: Item
    rgb: np.ndarray | None
    reference: Any = None  # ReferenceResult
    float_boxes: list[Box] | None = None
    error: str | None = None


@dataclass
class DatasetRun:
    """The outcome of a dataset run: the figures per engine, the per-image disagreements, what went wrong."""

    device: Accuracy
    reference: Accuracy
    float: Accuracy | None
    differing: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    images: int = 0
    resumed: int = 0  # images taken from an earlier run's journal, not redone
    seconds: float = 0.0


def _boxes(records: list[dict]) -> list[Box]:
    return [Box(int(b["category"]), float(b["score"]), *b["box"]) for b in records]


def _wire(boxes: list[Box]) -> list[dict]:
    return [b.to_dict() for b in boxes]


def earlier_results(records: list[dict[str, Any]], setup: RunSetup) -> dict[str, dict[str, Any]]:
    """Image name -> its record, from a journal's records of the same setup (the last one wins)."""
    key = setup.key()
    return {r["test"]: r for r in records if r.get("kind") == RECORD and r.get("setup") == key}


def run_dataset(dataset: LabelledSet, dut: Dut, setup: RunSetup, reference: Callable[[np.ndarray], Any],
                writer: ResultsWriter, tolerance: Tolerance = Tolerance(),
                float_detect: Callable[[np.ndarray], list[Box]] | None = None,
                resume_from: dict[str, dict[str, Any]] | None = None,
                progress: Callable[[int, int, float | None], None] | None = None,
                shard: tuple[int, int] = (0, 1)) -> DatasetRun:
    """Run every image of `dataset` (this shard's share) through `dut` and `reference`, journal each one."""
    from host.chip.preprocess import load_image

    started = time.monotonic()
    done = dict(resume_from or {})
    index, count = shard
    items = [it for i, it in enumerate(dataset.items) if i % count == index]
    todo = [it for it in items if it.image.name not in done]
    problems = list(dataset.problems)

    def host_side(item: Item) -> HostSide:
        try:
            rgb = load_image(item.image)
        except HarnessError as exc:
            return HostSide(item, None, error=str(exc))
        return HostSide(item, rgb, reference(rgb), float_detect(rgb) if float_detect else None)

    names = {it.image.name for it in items}
    results: dict[str, dict[str, Any]] = {n: r for n, r in done.items() if n in names}
    every = max(10, len(items) // 20)  # how often the running mAP is recomputed for the progress line
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hil-host") as pool:
        pending = pool.submit(host_side, todo[0]) if todo else None
        for k, item in enumerate(todo):
            host = pending.result()
            pending = pool.submit(host_side, todo[k + 1]) if k + 1 < len(todo) else None  # overlaps device k
            if host.error is not None:
                problems.append(Problem(item.image.name, "unreadable_image", host.error))
                writer.add("dataset-problem", item.image.name, problem="unreadable_image", detail=host.error)
                continue
            got = dut.detect(host.rgb, setup.thresholds)
            ref = host.reference
            comparison = compare_boxes(got.boxes, ref.boxes, tolerance, score_floor=setup.thresholds.score_thr)
            stage = None
            if not comparison.equal:
                verdict = diagnose(dut.dump(), ref.input_tensor, ref.input_exponent, ref.raw.tensors,
                                   ref.raw.exponents, comparison)
                stage = {"stage": verdict.stage, "message": verdict.message}
            record = writer.add(RECORD, item.image.name, setup=setup.key(), equal=comparison.equal, stage=stage,
                                device_boxes=_wire(list(got.boxes)), reference_boxes=_wire(ref.boxes),
                                float_boxes=_wire(host.float_boxes) if host.float_boxes is not None else None,
                                stage_us=got.stage_us, seconds=round(got.seconds, 4))
            results[item.image.name] = record
            if progress is not None:
                running = None
                if len(results) % every == 0:
                    running = evaluate(dataset, {n: _boxes(r["device_boxes"]) for n, r in results.items()}).map50_95
                progress(len(results), len(items), running)
    return summarize(dataset, results, problems, resumed=len(items) - len(todo),
                     seconds=time.monotonic() - started)


def summarize(dataset: LabelledSet, results: dict[str, dict[str, Any]], problems: list[Problem],
              resumed: int = 0, seconds: float = 0.0) -> DatasetRun:
    """The figures of a set of per-image records (from this run, an earlier one, or merged shards)."""
    device = evaluate(dataset, {n: _boxes(r["device_boxes"]) for n, r in results.items()})
    reference = evaluate(dataset, {n: _boxes(r["reference_boxes"]) for n, r in results.items()})
    with_float = {n: r["float_boxes"] for n, r in results.items() if r.get("float_boxes") is not None}
    floats = evaluate(dataset, {n: _boxes(b) for n, b in with_float.items()}) if with_float else None
    differing = [{"image": n, **(r.get("stage") or {})} for n, r in sorted(results.items()) if not r["equal"]]
    return DatasetRun(device, reference, floats, differing, problems, len(results), resumed, seconds)
