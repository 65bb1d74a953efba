"""The end of a HIL session as the user sees it: the progress bar during long runs, accuracy.json and its gates
for the whole labelled set, the one merged report of a pytest-xdist run."""

from __future__ import annotations

from typing import Callable

import pytest

from host.hil.state import HilState


def terminal_progress(config: pytest.Config, total: int, label: str) -> Callable[[int, int, float | None], None]:
    """A progress bar (images/s, ETA, running mAP) on the terminal, past pytest's output capture."""
    import contextlib
    import sys

    from tqdm import tqdm

    capman = config.pluginmanager.getplugin("capturemanager")
    visible = capman.global_and_fixture_disabled if capman is not None else contextlib.nullcontext
    with visible():
        bar = tqdm(total=total, unit="img", desc=label, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total_: int, running_map: float | None) -> None:
        with visible():
            bar.n = done
            if running_map is not None:
                bar.set_postfix_str(f"running mAP50-95 {running_map:.4f}", refresh=False)
            bar.refresh()
            if done >= total_:
                bar.close()

    return update


def finish_accuracy(session: pytest.Session, state: HilState) -> None:
    """accuracy.json for the whole set, from every journal (this process's, or every worker's); a failing
    gate fails the run."""
    from host.dataset import load_dataset
    from host.runs.finish import accuracy_result, journals, write_json
    from host.verdict import Tolerance

    o = state.options
    records = journals(o.report_dir)
    sessions = [r for r in records if r.get("kind") == "session" and r.get("model_sha256")]
    if not sessions:
        return
    dataset = load_dataset(o.dataset)
    latest = sessions[-1]
    setup_json = {"target": o.target, "imgsz": latest.get("imgsz"), "model_sha256": latest["model_sha256"],
                  "dataset_sha256": dataset.digest(), "dataset": str(o.dataset),
                  "thresholds": o.thresholds.as_dict()}
    exact = Tolerance(o.iou_tol, o.score_tol, o.unmatched_tol).exact
    found = accuracy_result(dataset, records, setup_json, exact, o.max_map_drop, o.accuracy_baselines,
                            o.accuracy_tolerance)
    if found is None:
        return
    result, gates = found
    from host.runs.finish import worst_images

    result["worst_images"] = worst_images(dataset, records, o.report_dir)
    result["provenance"] = {k: latest.get(k) for k in ("dut_kind", "harness_sha", "reference_engine",
                                                        "latency_label", "firmware_sha256")}
    write_json(o.report_dir / "accuracy.json", result)
    state.accuracy = result
    if any(g.status == "fail" for g in gates) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def write_merged_report(state: HilState) -> None:
    """The controller of a pytest-xdist run: one report from every worker's journal; every result names its board."""
    from host.report.html import write_report
    from host.runs.finish import journals, write_json

    records = journals(state.options.report_dir)
    sessions = [r for r in records if r.get("kind") == "session"]
    results = [r for r in records if r.get("kind") != "session"]
    provenance = dict(sessions[-1]) if sessions else {}
    provenance["boards"] = sorted({str(s.get("board")) for s in sessions})
    provenance["dead_boards"] = [r["detail"] for r in results if r.get("kind") == "board-dead"]
    provenance.pop("board", None)
    state.provenance = provenance
    write_json(state.options.report_dir / "results.json", {"session": provenance, "sessions": sessions,
                                                           "results": results})
    write_report(state.options.report_dir, provenance, results, state.accuracy)

