"""Latency measurement in windows (as MLPerf Tiny does): several `bench` calls, so one noisy window
cannot decide, all on the device's clock. The result is a plain dict, saved as JSON and gated later.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from host.latency.stats import stage_stats

STAGES = ("pre", "model", "post")


def measure(dut, meta: dict[str, Any], windows: int = 5, runs: int = 20, warmup: int = 2) -> dict[str, Any]:
    """`windows` bench calls of `runs` timed runs each (warm-ups before the first window only)."""
    result: dict[str, Any] = {"meta": {**meta, "windows": windows, "runs": runs, "warmup": warmup,
                                       "time": time.time()}, "windows": []}
    for i in range(windows):
        bench = dut.bench(runs, warmup if i == 0 else 0)
        result["windows"].append({s: bench.stage(s).tolist() for s in STAGES})
    return result


def summary(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per-stage statistics over every run of every window."""
    return {s: stage_stats([v for w in result["windows"] for v in w[s]]).to_json() for s in STAGES}


def save(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    return path
