"""Latency baselines stored in the repository: one readable JSON file per setup, created and updated
only by an explicit command, with provenance and a history of past medians for trend plots.

Setup key: target / DUT kind / chip revision / input size / model sha256 / firmware config. A write
goes to a temporary file that replaces the old one, so a crash or a bad input never damages a
stored baseline.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from host.errors import HarnessError
from host.latency.gate import COMPARABLE_KEYS, STAGES, check_comparable
from host.latency.measure import summary

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "baselines"
FORMAT = 1


def baseline_path(meta: dict[str, Any], directory: Path = DEFAULT_DIR) -> Path:
    missing = [k for k in COMPARABLE_KEYS if meta.get(k) in (None, "")]
    if missing:
        raise HarnessError(f"latency result lacks {missing}: it cannot be matched to a baseline; re-run the bench")
    name = (f"{meta['dut_kind']}-rev{meta['chip_revision']}-{meta['imgsz']}-{str(meta['model_sha256'])[:12]}"
            f"-{meta['firmware_config']}.json")
    return Path(directory) / str(meta["target"]) / name


def read_result(path: Path) -> dict[str, Any]:
    """A latency result or baseline file, checked enough that the gate cannot misread it."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HarnessError(f"latency file {path} does not exist; run the HIL latency test or pass the right path") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"latency file {path} is not valid JSON ({exc}); restore it from git or re-measure") from None
    try:
        meta, windows = data["meta"], data["windows"]
        for w in windows:
            for s in STAGES:
                if not all(isinstance(v, (int, float)) and v > 0 for v in w[s]):
                    raise ValueError(f"non-positive or non-numeric {s} timing")
        if not windows:
            raise ValueError("no windows")
    except (KeyError, TypeError, ValueError) as exc:
        raise HarnessError(f"latency file {path} is malformed ({exc}); restore it from git or re-measure") from None
    return {**data, "meta": meta, "windows": windows}


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _entry(result: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"time": time.time(), "harness_sha": result["meta"].get("harness_sha"), "reason": reason,
            "medians_us": {s: v["median"] for s, v in summary(result).items()}}


def create(result_path: Path, directory: Path = DEFAULT_DIR, reason: str = "created") -> Path:
    result = read_result(result_path)
    path = baseline_path(result["meta"], directory)
    if path.exists():
        raise HarnessError(f"a baseline already exists at {path}; "
                           "use `python -m host latency update` to replace it on purpose")
    _write(path, {"format": FORMAT, **result, "history": [_entry(result, reason)]})
    return path


def update(result_path: Path, directory: Path = DEFAULT_DIR, reason: str = "updated") -> Path:
    result = read_result(result_path)
    path = baseline_path(result["meta"], directory)
    if not path.exists():
        raise HarnessError(f"no baseline at {path} to update; use `python -m host latency create` first")
    old = read_result(path)
    check_comparable(result["meta"], old["meta"])
    history = list(old.get("history", [])) + [_entry(result, reason)]
    _write(path, {"format": FORMAT, **result, "history": history})
    return path


def find(meta: dict[str, Any], directory: Path = DEFAULT_DIR) -> Path | None:
    path = baseline_path(meta, directory)
    return path if path.exists() else None
