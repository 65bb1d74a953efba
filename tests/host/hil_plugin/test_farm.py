"""Several boards on one runner: `pytest -n 2 --hardware-map` with two simulated boards shares the work, writes
one report naming both, and when one board dies its remaining tests run on the other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.host.hil_plugin.hil_run import IMAGES, run_hil

pytestmark = pytest.mark.slow


def _map(path: Path, faults_b: str | None = None) -> Path:
    lines = ["boards:", "  - id: sim-a", "    kind: sim", "    target: esp32p4",
             "  - id: sim-b", "    kind: sim", "    target: esp32p4"]
    if faults_b:
        lines.append(f"    faults: {faults_b}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_two_boards_share_the_run_and_one_report_names_both(tiny, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = run_hil(tiny, "-n", "2", f"--hardware-map={_map(tmp_path / 'map.yaml')}", f"--dataset={IMAGES}",
                   f"--report-dir={reports}", "--bench-runs", "3", "--bench-windows", "2",
                   env={"HIL_LOCK_DIR": str(tmp_path / "locks")})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    merged = json.loads((reports / "results.json").read_text())
    assert merged["session"]["boards"] == ["sim-a", "sim-b"], out[-3000:]
    boards = {r.get("board") for r in merged["results"] if r.get("kind") == "detect"}
    assert boards <= {"sim-a", "sim-b"} and boards, boards
    accuracy = json.loads((reports / "accuracy.json").read_text())
    assert set(accuracy["images_per_board"]) == {"sim-a", "sim-b"}, accuracy["images_per_board"]
    assert sum(accuracy["images_per_board"].values()) == accuracy["images"] == len(list(IMAGES.glob("*.png")))
    assert "DUTs: 2 from the hardware map (sim-a, sim-b)" in out


def test_a_board_that_dies_is_named_and_the_other_board_finishes(tiny, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = run_hil(tiny, "-n", "2", "tests/hil/test_detect.py",
                   f"--hardware-map={_map(tmp_path / 'map.yaml', faults_b='panic=detect')}",
                   f"--report-dir={reports}", env={"HIL_LOCK_DIR": str(tmp_path / "locks")})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, out[-4000:]  # only the image in flight when sim-b died
    assert "DEAD BOARD: sim-b" in out, out[-4000:]
    merged = json.loads((reports / "results.json").read_text())
    passed = {r["test"] for r in merged["results"] if r.get("kind") == "detect" and r["passed"]}
    assert len(passed) == len(list(IMAGES.glob("*.png"))) - 1
    assert {r.get("board") for r in merged["results"] if r.get("kind") == "detect" and r["passed"]} == {"sim-a"}
