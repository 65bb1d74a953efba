"""An artifact says what it is for: the harness writes target/size/recipe into its .espdl; a foreign file's
chip and size are inferred; a session that disagrees with the file is refused before anything starts."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host.errors import HarnessError
from host.espdl import load
from host.model import quantize_model
from host.model.identity import check_identity, identify

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def espdl_by_target(tiny_onnx, calib_dir, tmp_path_factory) -> dict[str, Path]:
    cache = tmp_path_factory.mktemp("identity_cache")
    return {t: quantize_model(tiny_onnx, target=t, imgsz=64, calib_dir=calib_dir, cache_root=cache).espdl_path
            for t in ("esp32p4", "esp32s3")}


@pytest.mark.parametrize("target", ["esp32p4", "esp32s3"])
def test_the_harness_writes_its_identity_into_the_file(espdl_by_target, calib_dir, target: str) -> None:
    found = identify(load(espdl_by_target[target]))
    assert (found.target, found.target_source, found.imgsz, found.imgsz_source) == (target, "metadata", 64, "metadata")
    assert found.preset == "int8" and found.esp_ppq and len(found.calib_sha256 or "") == 64


@pytest.mark.parametrize("target", ["esp32p4", "esp32s3"])
def test_a_foreign_file_is_inferred_and_says_so(espdl_by_target, target: str) -> None:
    model = dataclasses.replace(load(espdl_by_target[target]), metadata={})  # as Espressif's files come
    found = identify(model)
    assert found.target == target and found.target_source.startswith("inferred from conv weight exponents")
    assert (found.imgsz, found.imgsz_source) == (64, "inferred from the input shape") and found.preset is None


def test_a_mismatch_names_both_values_and_the_fix(espdl_by_target) -> None:
    path = espdl_by_target["esp32p4"]
    found = identify(load(path))
    with pytest.raises(HarnessError, match=r"quantized for esp32p4 .* targets esp32s3: run with --target esp32p4"):
        check_identity(found, path, "esp32s3", 64)
    with pytest.raises(HarnessError, match=r"takes 64x64 input .* --imgsz 320: pass --imgsz 64"):
        check_identity(found, path, "esp32p4", 320)
    check_identity(found, path, "esp32p4", 64)  # agreeing: no error


def test_the_main_command_refuses_a_file_for_another_chip_before_any_dut(espdl_by_target, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/hil", "--target", "esp32s3", "--dut", "sim", "--imgsz", "64",
         f"--model={espdl_by_target['esp32p4']}", f"--report-dir={tmp_path}", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1 and "esp32p4" in lines[0] and "esp32s3" in lines[0], out[-3000:]
    assert "Traceback" not in out and time.monotonic() - started < 10
    assert not (tmp_path / "model_partition.bin").exists()  # nothing was packed, flashed or started
