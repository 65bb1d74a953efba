"""A dataset run as a user runs it: bad labels are named and counted while the run goes on, and a run killed
half way and rerun with --resume ends with the same figures without redoing what was done."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.host.hil_plugin.hil_run import IMAGES, ROOT, hil_command, hil_env, run_hil

ACCURACY_ONLY = ("tests/hil/test_accuracy.py", "--dut", "sim")


def _labelled_copy(folder: Path) -> Path:
    folder.mkdir()
    for image in sorted(IMAGES.glob("*.png")):
        shutil.copy(image, folder / image.name)
        shutil.copy(image.with_suffix(".txt"), folder / image.with_suffix(".txt").name)
    return folder


def test_bad_labels_are_named_and_counted_and_the_run_goes_on(tiny, tmp_path: Path) -> None:
    data = _labelled_copy(tmp_path / "data")
    names = sorted(p.stem for p in data.glob("*.png"))
    (data / f"{names[0]}.txt").unlink()  # an image without a label file
    (data / f"{names[1]}.txt").write_text("0 0.5 0.5 0.2 0.2\n93 0.5 0.5 0.1 0.1\n")  # class beyond 80
    (data / f"{names[2]}.txt").write_text("0 0.5 oops 0.2\n")  # malformed line
    (data / f"{names[3]}.png").write_bytes((data / f"{names[3]}.png").read_bytes()[:100])  # unreadable image
    reports = tmp_path / "reports"
    proc = run_hil(tiny, *ACCURACY_ONLY, f"--dataset={data}", f"--report-dir={reports}")
    out = proc.stdout + proc.stderr
    result = json.loads((reports / "accuracy.json").read_text())
    counts = result["problem_counts"]
    assert counts == {"no_label": 1, "class_out_of_range": 1, "malformed_line": 1, "unreadable_image": 1}, out[-3000:]
    assert result["images"] == len(names) - 2  # no label, unreadable: left out; the others all ran
    assert result["gates"]["device_equals_reference"]["verdict"] == "pass", out[-3000:]
    assert proc.returncode == 0, out[-3000:]


def test_a_killed_run_resumes_with_the_same_figures(tiny, tmp_path: Path) -> None:
    data = _labelled_copy(tmp_path / "data")
    full = tmp_path / "full"
    proc = run_hil(tiny, *ACCURACY_ONLY, f"--dataset={data}", f"--report-dir={full}")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    expected = json.loads((full / "accuracy.json").read_text())

    reports = tmp_path / "reports"
    slow = hil_command(tiny, *ACCURACY_ONLY, f"--dataset={data}", f"--report-dir={reports}",
                       "--sim-faults=slow_link=60000")
    killed = subprocess.Popen(slow, cwd=ROOT, env=hil_env(tiny), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = reports / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = journal.read_text().count('"accuracy-image"') if journal.exists() else 0
        if done >= 5:
            break
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    assert 5 <= done < expected["images"], done

    proc = run_hil(tiny, *ACCURACY_ONLY, f"--dataset={data}", f"--report-dir={reports}", "--resume")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    resumed = json.loads((reports / "accuracy.json").read_text())
    assert resumed["resumed"] >= 5 and resumed["images"] == expected["images"], out[-3000:]
    for engine in ("device", "reference", "float"):
        assert resumed[engine]["map50_95"] == expected[engine]["map50_95"], engine
        assert resumed[engine]["map50"] == expected[engine]["map50"], engine
