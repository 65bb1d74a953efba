"""Accuracy on a labelled set (--dataset): the device's mAP equals the reference's, the drop from the float
model stays within --max-map-drop, and the figures hold against a stored baseline of the same setup."""

from __future__ import annotations

import json
import os

import pytest

from host.accuracy import baseline as baselines
from host.accuracy.gates import against_baseline, device_equals_reference, max_map_drop
from host.dataset import load_dataset
from host.hil.plugin import terminal_progress
from host.runs.dataset import RunSetup, earlier_results, run_dataset

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


@pytest.fixture(scope="module")
def accuracy(request, hil_state, hil_options, hil_model, hil_dut, hil_reference_engine, hil_results,
             hil_tolerance):
    """The dataset run, once per session: figures, gates and accuracy.json."""
    if hil_options.dataset is None:
        pytest.skip("no --dataset given: the accuracy run needs a labelled set (YOLO label files or a COCO .json)")
    dataset = load_dataset(hil_options.dataset)
    setup = RunSetup(hil_model.sha256, hil_dut.kind, hil_options.target, hil_options.thresholds)
    earlier = earlier_results(hil_results.earlier, setup) if hil_options.resume else {}
    float_detect = None
    if hil_model.onnx_path is not None:
        from host.accuracy.float_model import FloatDetector

        detector = FloatDetector(hil_model.onnx_path, hil_model.imgsz)
        float_detect = lambda rgb: detector.detect(rgb, hil_options.thresholds)  # noqa: E731
    progress = terminal_progress(request.config, len(dataset.items), f"accuracy on {hil_dut.kind}")
    run = run_dataset(dataset, hil_dut, setup, hil_reference_engine, hil_results, hil_tolerance,
                      float_detect=float_detect, resume_from=earlier, progress=progress)
    setup_json = {"target": hil_options.target, "imgsz": hil_model.imgsz, "model_sha256": hil_model.sha256,
                  "dataset_sha256": dataset.digest(), "dataset": str(hil_options.dataset),
                  "thresholds": hil_options.thresholds.as_dict(), "dut_kind": hil_dut.kind}
    gates = [device_equals_reference(run, hil_tolerance.exact), max_map_drop(run, hil_options.max_map_drop),
             against_baseline(run, baselines.find(setup_json, hil_options.accuracy_baselines),
                              hil_options.accuracy_tolerance)]
    result = {
        "setup": setup_json,
        "device": run.device.to_json(), "reference": run.reference.to_json(),
        "float": run.float.to_json() if run.float else None,
        "gates": {g.name: g.to_json() for g in gates},
        "images": run.images, "resumed": run.resumed, "seconds": round(run.seconds, 2),
        "problems": [p.to_json() for p in run.problems],
        "problem_counts": _counts(run.problems),
        "provenance": {k: hil_state.provenance.get(k) for k in ("dut_kind", "harness_sha", "reference_engine",
                                                                  "latency_label", "firmware_sha256")},
    }
    path = hil_results.dir / "accuracy.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    hil_results.add("accuracy", "dataset", passed=all(g.status != "fail" for g in gates), summary={
        k: result[k] for k in ("device", "reference", "float", "gates", "images", "resumed", "problem_counts")})
    return {g.name: g for g in gates} | {"_run": run}


def _counts(problems) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return counts


def test_device_map_equals_reference(accuracy, hil_record) -> None:
    gate = accuracy["device_equals_reference"]
    hil_record.add("accuracy-gate", gate.name, passed=gate.status != "fail", detail=gate.message)
    if gate.status == "skipped":
        pytest.skip(gate.message)
    assert gate.status == "pass", gate.message


def test_map_drop_from_float(accuracy, hil_record) -> None:
    gate = accuracy["max_map_drop"]
    hil_record.add("accuracy-gate", gate.name, passed=None if gate.status == "skipped" else gate.status == "pass",
                   detail=gate.message)
    if gate.status == "skipped":
        pytest.skip(gate.message)
    assert gate.status == "pass", gate.message


def test_map_against_baseline(accuracy, hil_record) -> None:
    gate = accuracy["baseline"]
    hil_record.add("accuracy-gate", gate.name, passed=None if gate.status == "skipped" else gate.status == "pass",
                   detail=gate.message)
    if gate.status == "skipped":
        pytest.skip(gate.message)
    assert gate.status == "pass", gate.message
