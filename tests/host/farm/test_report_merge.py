"""`python -m host report merge`: the report folders of CI shards (plain or with pytest-xdist gw* workers) as one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from host.runs.finish import journals

ROOT = Path(__file__).resolve().parents[3]


def _journal(folder: Path, board: str, images: list[str], failed: tuple[str, ...] = (), model: str = "ab" * 32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    lines = [{"kind": "session", "board": board, "model_sha256": model, "target": "esp32p4", "dut_kind": "remote",
              "latency_label": "measured", "model": "yolo11n.pt"}]
    for name in images:
        (folder / "images" / f"{name}.png").write_bytes(b"\x89PNG fake")
        lines.append({"kind": "detect", "test": name, "board": board, "passed": name not in failed,
                      "image": f"{name}.png", "overlay": f"images/{name}.png",
                      "verdict": {"stage": "none", "message": "boxes equal", "tensors": []},
                      "device_boxes": [], "reference_boxes": []})
    (folder / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def _merge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "host", "report", "merge", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_shards_with_and_without_workers_merge_into_one_report(tmp_path: Path) -> None:
    _journal(tmp_path / "shard-0" / "gw0", "p4-a", ["img00", "img03"])
    _journal(tmp_path / "shard-0" / "gw1", "p4-b", ["img01"])
    _journal(tmp_path / "shard-1", "p4-c", ["img02", "img04"])
    out = tmp_path / "merged"
    proc = _merge(str(tmp_path / "shard-0"), str(tmp_path / "shard-1"), f"--out={out}", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["boards"] == ["p4-a", "p4-b", "p4-c"] and summary["failed"] == 0
    assert summary["images_per_board"] == {"p4-a": 2, "p4-b": 1, "p4-c": 2}
    merged = json.loads((out / "results.json").read_text())
    assert merged["session"]["boards"] == ["p4-a", "p4-b", "p4-c"] and len(merged["sessions"]) == 3
    assert sorted(r["test"] for r in merged["results"]) == ["img00", "img01", "img02", "img03", "img04"]
    for record in merged["results"]:
        assert (out / record["overlay"]).is_file(), record["overlay"]
    assert (out / "report.html").is_file()
    assert len(journals(out)) == 8  # the merged folder reads like any report folder (and can be merged again)


def test_a_failed_result_makes_the_merge_exit_1_and_is_named(tmp_path: Path) -> None:
    _journal(tmp_path / "a", "p4-a", ["img00", "img01"], failed=("img01",))
    proc = _merge(str(tmp_path / "a"), "--out", str(tmp_path / "m"))
    assert proc.returncode == 1
    assert "1 failed" in proc.stdout and "FAILED detect:img01" in proc.stdout


def test_folders_of_different_runs_or_without_journals_are_refused_in_one_line(tmp_path: Path) -> None:
    _journal(tmp_path / "a", "p4-a", ["img00"])
    _journal(tmp_path / "b", "p4-b", ["img01"], model="cd" * 32)
    (tmp_path / "empty").mkdir()
    for args, words in (((tmp_path / "a", tmp_path / "b"), "differ in model_sha256"),
                        ((tmp_path / "a", tmp_path / "empty"), "holds no results.jsonl"),
                        ((tmp_path / "a",), "is one of the folders to merge")):
        out = ["--out", str(tmp_path / "a")] if words.startswith("is one") else ["--out", str(tmp_path / "m")]
        proc = _merge(*map(str, args), *out)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], proc.stderr
