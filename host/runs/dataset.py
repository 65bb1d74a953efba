"""A labelled set through the DUT and the reference: per-image records in the journal, then mAP and gates.

Pipelined on both ends. On a device with queued detects (protocol 2) the images stream through
`Dut.detect_stream`: while the device computes image k, image k+1 uploads, and a worker thread computes the
reference (and float) detections of the images in flight, so the link and the host's compute hide behind
device time. A device without queued detects gets one image at a time, with the host's work for image k+1
overlapping device image k. `DatasetRun.detect_path` says which path ran. Resumable: every image's result
is one fsync'd journal line (results.jsonl) tagged with the run's setup key; `resume` skips the images an
earlier run of the same setup finished, so a kill loses at most the images in flight.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from host.accuracy.coco import Accuracy, evaluate
from host.chip.detection import Box, Thresholds
from host.dataset import Item, LabelledSet, Problem
from host.dut.dut import STREAM_PATH, Dut
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
    detect_path: str = ""  # "stream" (queued detects, pipelined) or "one-at-a-time"; "" when nothing ran


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

    def host_side(item: Item, rgb: np.ndarray | None = None) -> HostSide:
        if rgb is None:
            try:
                rgb = load_image(item.image)
            except HarnessError as exc:
                return HostSide(item, None, error=str(exc))
        return HostSide(item, rgb, reference(rgb), float_detect(rgb) if float_detect else None)

    names = {it.image.name for it in items}
    results: dict[str, dict[str, Any]] = {n: r for n, r in done.items() if n in names}
    every = max(10, len(items) // 20)  # how often the running mAP is recomputed for the progress line
    path = dut.stream_path if todo else ""

    def unreadable(item: Item, error: str) -> None:
        problems.append(Problem(item.image.name, "unreadable_image", error))
        writer.add("dataset-problem", item.image.name, problem="unreadable_image", detail=error)

    def finish(item: Item, host: HostSide, got: Any, redetect: bool) -> None:
        ref = host.reference
        comparison = compare_boxes(got.boxes, ref.boxes, tolerance, score_floor=setup.thresholds.score_thr)
        stage = None
        if not comparison.equal:
            if redetect:  # the stream moved on: the device's tensors are a later image's, so run this one again
                dut.detect(host.rgb, setup.thresholds)
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

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hil-host") as pool:
        if path == STREAM_PATH:
            # The main thread loads each image and uploads it; the worker computes the reference of the images
            # in flight (at most three: the one being compared, the one computing, the one uploading).
            flight: deque[tuple[Item, Future[HostSide]]] = deque()

            def readable_images() -> Iterator[np.ndarray]:
                for item in todo:
                    try:
                        rgb = load_image(item.image)
                    except HarnessError as exc:
                        unreadable(item, str(exc))
                        continue
                    flight.append((item, pool.submit(host_side, item, rgb)))
                    yield rgb

            for got in dut.detect_stream(readable_images(), setup.thresholds):
                item, host = flight.popleft()
                finish(item, host.result(), got, redetect=True)
        else:
            pending = pool.submit(host_side, todo[0]) if todo else None
            for k, item in enumerate(todo):
                host = pending.result()
                pending = pool.submit(host_side, todo[k + 1]) if k + 1 < len(todo) else None  # overlaps device k
                if host.error is not None:
                    unreadable(item, host.error)
                    continue
                finish(item, host, dut.detect(host.rgb, setup.thresholds), redetect=False)
    run = summarize(dataset, results, problems, resumed=len(items) - len(todo), seconds=time.monotonic() - started)
    run.detect_path = path
    return run


def summarize(dataset: LabelledSet, results: dict[str, dict[str, Any]], problems: list[Problem],
              resumed: int = 0, seconds: float = 0.0) -> DatasetRun:
    """The figures of a set of per-image records (from this run, an earlier one, or merged shards)."""
    device = evaluate(dataset, {n: _boxes(r["device_boxes"]) for n, r in results.items()})
    reference = evaluate(dataset, {n: _boxes(r["reference_boxes"]) for n, r in results.items()})
    with_float = {n: r["float_boxes"] for n, r in results.items() if r.get("float_boxes") is not None}
    floats = evaluate(dataset, {n: _boxes(b) for n, b in with_float.items()}) if with_float else None
    differing = [{"image": n, **(r.get("stage") or {})} for n, r in sorted(results.items()) if not r["equal"]]
    return DatasetRun(device, reference, floats, differing, problems, len(results), resumed, seconds)
