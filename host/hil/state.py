"""The state of one HIL session, shared by the plugin's hooks and fixtures (kept in `config.stash`)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from host.dut.backend import Artifact
from host.dut.dut import Dut
from host.dut.select import Choice
from host.errors import HarnessError
from host.hil.options import ROOT, HilOptions
from host.model.quantize import QuantizedModel
from host.report.results import ResultsWriter


@dataclass
class HilState:
    """The session's HIL state, kept in `config.stash` (never in a module global)."""

    options: HilOptions
    worker: str = "main"  # the pytest-xdist worker id ("gw0", ...), or "main" without xdist
    workers: int = 1
    choice: Choice | None = None
    map_entries: list = field(default_factory=list)  # the hardware map's entries, when one is given
    run_id: str = ""  # one id for the whole run, shared by every pytest-xdist worker
    held: Any = None  # the hardware map entry this session holds (host.dut.hardware_map.HeldEntry)
    artifact: Artifact | None = None  # what the DUT was given (a board taking over gets the same)
    dut: Dut | None = None  # the session's DUT (a take-over swaps what is behind it)
    results: ResultsWriter | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    unreadable_images: dict[str, str] = field(default_factory=dict)
    accuracy: dict[str, Any] | None = None  # accuracy.json's content, when a dataset ran


def harness_revision() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return (sha or "unknown") + ("-dirty" if dirty else "")


def worker_report_dir(state: HilState) -> Path:
    """Where this session writes: the report folder, or its worker's subfolder under pytest-xdist (the
    controller merges them at the end)."""
    return state.options.report_dir / state.worker if state.worker != "main" else state.options.report_dir


def load_test_image(state: HilState, path: Path):  # -> RGB888 array
    """An image as RGB888, or a HarnessError that also lists it among the session's unreadable images."""
    from host.chip.preprocess import load_image

    try:
        return load_image(path)
    except HarnessError as exc:
        state.unreadable_images[path.name] = str(exc)
        raise


def dataset_setup(state: HilState, model: QuantizedModel):
    """The resume key of this session's dataset run."""
    from host.runs.dataset import RunSetup

    return RunSetup(model.sha256, str(state.provenance.get("dut_kind")), state.options.target,
                    state.options.thresholds)



STATE = pytest.StashKey[HilState]()
