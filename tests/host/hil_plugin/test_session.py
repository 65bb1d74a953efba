"""The HIL suite as a user runs it, in a subprocess, on the simulated DUT with a tiny model: what it says,
what it writes, and how it ends when something is wrong (once, with one line)."""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.host.hil_plugin.hil_run import IMAGES, run_hil


def test_hil_session_on_the_sim_writes_every_report(tiny, tmp_path: Path) -> None:
    reports, junit = tmp_path / "reports", tmp_path / "junit.xml"
    proc = run_hil(tiny, "--dut", "sim", f"--report-dir={reports}", f"--junitxml={junit}", "--bench-runs", "5",
                   "--bench-windows", "3")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "running on the SIMULATED DUT" in out and "latencies simulated" in out
    assert "tests/host" not in out, "the main command runs the HIL suite only"
    lines = [json.loads(line) for line in (reports / "results.jsonl").read_text().splitlines()]
    assert lines[0]["kind"] == "session" and lines[0]["dut_kind"] == "sim"
    assert lines[0]["sim_emulator_notes"] == []  # a small int8 P4 model: nothing the emulator cannot prove
    assert lines[0]["reference_engine"] == "ESP-PPQ executor"
    detections = [r for r in lines if r["kind"] == "detect"]
    assert len(detections) == len(list(IMAGES.glob("*.png")))
    assert all(r["passed"] for r in detections)
    assert json.loads((reports / "results.json").read_text())["session"]["model_sha256"]
    page = (reports / "report.html").read_text()
    assert "DUT: sim" in page and page.count("<img src='images/") == len(detections)
    assert (reports / "latency.json").is_file() and (reports / "latency_distribution.png").is_file()
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert props.get("dut_kind") == "sim" and len(props.get("model_sha256", "")) == 64


def test_ci_without_a_board_refuses_auto_in_one_line(tiny, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = run_hil(tiny, f"--report-dir={tmp_path}", env={"CI": "true"})
    elapsed = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "pass --dut sim" in errors[0], out[-3000:]
    assert "Traceback" not in out and elapsed < 10, elapsed


def test_a_bad_image_fails_only_its_own_test(tiny, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    good = sorted(IMAGES.glob("*.png"))[0]
    (images / "a_broken.png").write_bytes(good.read_bytes()[:200])  # sorts first: latency must skip it
    shutil.copy(good, images / good.name)
    reports = tmp_path / "reports"
    proc = run_hil(tiny, "--dut", "sim", f"--images={images}", f"--report-dir={reports}", "--bench-runs", "3",
                   "--bench-windows", "2")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    failed = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert len(failed) == 1 and "a_broken" in failed[0], out[-4000:]
    assert "test_latency_is_measured_per_stage PASSED" in out or "unreadable images (1): a_broken.png" in out
    result = json.loads((reports / "results.json").read_text())
    assert "a_broken.png" in result["session"]["unreadable_images"]
    latency = json.loads((reports / "latency.json").read_text())
    assert latency["meta"]["image"] == good.name


def test_a_device_that_stops_answering_at_setup_stops_the_session_once(tiny, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = run_hil(tiny, "--dut", "sim", "--sim-faults=hang=info", "--dut-timeout", "2", f"--report-dir={reports}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    assert "ERROR at setup" not in out and out.count("yolo11-hil: device info failed") == 1, out[-4000:]
    assert "model_partition.bin" in out  # what is already in the report folder is named
