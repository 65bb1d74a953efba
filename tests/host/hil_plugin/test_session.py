"""The HIL suite as a user runs it, in a subprocess, on the simulated DUT with a tiny model: it says the
DUT is simulated, passes, and writes the JSON, JUnit and HTML reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.host.builders import write_images, write_tiny_detector

ROOT = Path(__file__).resolve().parents[3]


def test_hil_session_on_the_sim_writes_every_report(tmp_path: Path) -> None:
    model = write_tiny_detector(tmp_path / "tiny.onnx")
    calib = write_images(tmp_path / "calib", 8, seed=3)
    reports = tmp_path / "reports"
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/hil", "--target", "esp32p4", f"--model={model}", "--imgsz", "64",
         f"--calib={calib}", f"--report-dir={reports}", f"--junitxml={junit}", "--bench-runs", "5",
         "--bench-windows", "3", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, HIL_CACHE_DIR=str(tmp_path / "cache")),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "running on the SIMULATED DUT" in out and "latencies simulated" in out
    lines = [json.loads(line) for line in (reports / "results.jsonl").read_text().splitlines()]
    assert lines[0]["kind"] == "session" and lines[0]["dut_kind"] == "sim"
    assert lines[0]["sim_emulator_notes"] == []  # a small int8 P4 model: nothing the emulator cannot prove
    detections = [r for r in lines if r["kind"] == "detect"]
    assert len(detections) == len(list((ROOT / "fixtures" / "images").glob("*.png")))
    assert all(r["passed"] for r in detections)
    assert json.loads((reports / "results.json").read_text())["session"]["model_sha256"]
    page = (reports / "report.html").read_text()
    assert "DUT: sim" in page and page.count("<img src='images/") == len(detections)
    assert (reports / "latency.json").is_file() and (reports / "latency_distribution.png").is_file()
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert props.get("dut_kind") == "sim" and len(props.get("model_sha256", "")) == 64
