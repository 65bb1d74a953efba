"""The latency gate and baseline store: decisions, refusals, and a stored baseline that is never damaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from host.errors import HarnessError
from host.latency import baseline
from host.latency.gate import GateSettings, gate, gate_stage
from tests.host.builders import LATENCY_META as META
from tests.host.builders import latency_result as result


def _statuses(current: dict, base: dict) -> dict[str, str]:
    return {v.stage: v.status for v in gate(current, base)}


def test_unchanged_passes_and_five_percent_fails() -> None:
    base = result(0)
    assert _statuses(result(1), base) == {"pre": "pass", "model": "pass", "post": "pass"}
    assert _statuses(result(1, {"model": 1.05}), base)["model"] == "fail"
    assert _statuses(result(1, {"post": 1.05}), base)["post"] == "fail"


def test_small_significant_change_passes() -> None:
    """2 % slower on the low-noise model stage is real (p tiny) but below the 5 % gate."""
    v = {x.stage: x for x in gate(result(1, {"model": 1.02}), result(0))}["model"]
    assert v.p_slower < 1e-3 and v.status == "pass"


def test_improvement_warns() -> None:
    assert _statuses(result(1, {"pre": 0.9}), result(0))["pre"] == "improved"


def test_budget_rule() -> None:
    cur = np.full(10, 700_000.0)
    v = gate_stage("model", cur, cur * 1.0, GateSettings(), budget_us=600_000.0)
    assert v.status == "over-budget" and "budget" in v.message


@pytest.mark.parametrize("key, value", [("target", "esp32s3"), ("chip_revision", 300), ("dut_kind", "board"),
                                        ("imgsz", 640), ("firmware_config", "usj")])
def test_other_setups_are_never_compared(key: str, value) -> None:
    with pytest.raises(HarnessError, match=f"not comparable: {key}"):
        gate(result(1, meta={key: value}), result(0))


def _save(tmp_path: Path, data: dict, name: str = "latency.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_create_update_and_history(tmp_path: Path) -> None:
    store = tmp_path / "baselines"
    first = baseline.create(_save(tmp_path, result(0)), store)
    assert first.parent.name == "esp32p4" and first.name.startswith("sim-rev100-320-abababababab-sim")
    with pytest.raises(HarnessError, match="already exists"):
        baseline.create(_save(tmp_path, result(1)), store)
    baseline.update(_save(tmp_path, result(1)), store, reason="release 1.1")
    stored = json.loads(first.read_text())
    assert [h["reason"] for h in stored["history"]] == ["created", "release 1.1"]


@pytest.mark.parametrize("bad, message", [
    (None, "does not exist"),
    ("{not json", "not valid JSON"),
    (json.dumps({"meta": META, "windows": [{"pre": [1], "model": [-5], "post": [1]}]}), "malformed"),
    (json.dumps({"windows": []}), "malformed"),
])
def test_bad_input_never_damages_the_stored_baseline(tmp_path: Path, bad, message: str) -> None:
    store = tmp_path / "baselines"
    path = baseline.create(_save(tmp_path, result(0)), store)
    before = path.read_bytes()
    candidate = tmp_path / "bad.json"
    if bad is not None:
        candidate.write_text(bad)
    with pytest.raises(HarnessError, match=message):
        baseline.update(candidate, store)
    assert path.read_bytes() == before


def test_update_for_another_revision_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "baselines"
    path = baseline.create(_save(tmp_path, result(0)), store)
    before = path.read_bytes()
    with pytest.raises(HarnessError, match="no baseline"):
        baseline.update(_save(tmp_path, result(1, meta={"chip_revision": 101})), store)
    assert path.read_bytes() == before


def test_cli_gate_exit_status(tmp_path: Path) -> None:
    from host.cli import main

    store = tmp_path / "b"
    baseline.create(_save(tmp_path, result(0), "base.json"), store)
    assert main(["latency", "gate", str(_save(tmp_path, result(1), "same.json")), "--dir", str(store)]) == 0
    assert main(["latency", "gate", str(_save(tmp_path, result(1, {"model": 1.06}), "slow.json")),
                 "--dir", str(store)]) == 1
    assert main(["latency", "compare", str(tmp_path / "base.json"), str(tmp_path / "slow.json")]) == 0
