"""Accuracy baselines stored in the repository: one readable JSON per setup, created and updated only by an
explicit command (`python -m host accuracy create|update`), with a history of past figures.

Setup key: target / input size / model sha256 / labelled-set digest / thresholds. Not the DUT kind: on a
bit-exact DUT a board and the simulator score the same. A write goes to a temporary file that replaces the
old one, so a crash or a bad input never damages a stored baseline.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from host.errors import HarnessError

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "accuracy_baselines"
SETUP_KEYS = ("target", "imgsz", "model_sha256", "dataset_sha256", "thresholds")


def baseline_path(setup: dict[str, Any], directory: Path = DEFAULT_DIR) -> Path:
    missing = [k for k in SETUP_KEYS if setup.get(k) in (None, "")]
    if missing:
        raise HarnessError(f"the accuracy result lacks {missing}: it cannot be matched to a baseline; re-run it")
    t = setup["thresholds"]
    name = (f"{setup['imgsz']}-{str(setup['model_sha256'])[:12]}-{str(setup['dataset_sha256'])[:12]}"
            f"-s{t['score_thr']}-n{t['nms_thr']}-k{t['top_k']}.json")
    return Path(directory) / str(setup["target"]) / name


def read_result(path: Path) -> dict[str, Any]:
    """An accuracy.json (or a baseline), checked enough that the gate cannot misread it."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HarnessError(f"accuracy file {path} does not exist; run the HIL suite with --dataset first") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"accuracy file {path} is not valid JSON ({exc}); re-run the dataset or restore it") from None
    try:
        setup = data["setup"]
        for engine in ("device", "reference"):
            float(data[engine]["map50_95"]), float(data[engine]["map50"])
        if not isinstance(setup, dict):
            raise TypeError("setup is not an object")
    except (KeyError, TypeError, ValueError) as exc:
        raise HarnessError(f"accuracy file {path} is malformed ({type(exc).__name__}: {exc}); it needs 'setup' "
                           "and 'device'/'reference' with map50_95 and map50") from None
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _stored(result: dict[str, Any], history: list[dict[str, Any]], reason: str) -> dict[str, Any]:
    entry = {"time": time.time(), "reason": reason, "device": result["device"],
             "harness_sha": result.get("provenance", {}).get("harness_sha")}
    return {"setup": result["setup"], "device": result["device"], "reference": result["reference"],
            "float": result.get("float"), "history": [*history, entry]}


def create(result_path: Path, directory: Path = DEFAULT_DIR, reason: str = "created") -> Path:
    result = read_result(result_path)
    path = baseline_path(result["setup"], directory)
    if path.exists():
        raise HarnessError(f"an accuracy baseline already exists at {path}; use `python -m host accuracy update` "
                           "to replace it on purpose")
    _write(path, _stored(result, [], reason))
    return path


def update(result_path: Path, directory: Path = DEFAULT_DIR, reason: str = "updated") -> Path:
    result = read_result(result_path)
    path = baseline_path(result["setup"], directory)
    if not path.exists():
        raise HarnessError(f"no accuracy baseline at {path} to update; use `python -m host accuracy create` first")
    old = read_result(path)
    _write(path, _stored(result, list(old.get("history", [])), reason))
    return path


def find(setup: dict[str, Any], directory: Path = DEFAULT_DIR) -> dict[str, Any] | None:
    path = baseline_path(setup, directory)
    return read_result(path) if path.exists() else None
