"""The quantize pipeline end to end on a tiny split-head detector: artifacts, cache, reproducibility, CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from host.model import quantize_model

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def built(tiny_onnx, calib_dir, cache_root):
    return quantize_model(tiny_onnx, imgsz=64, calib_dir=calib_dir, cache_root=cache_root)


def test_artifacts_and_exponents(built) -> None:
    assert not built.cached
    assert built.espdl_path.read_bytes()[:4] == b"EDL2"
    assert built.graph_path.is_file() and built.onnx_path.is_file()
    assert sorted(built.output_exponents) == ["box0", "box1", "box2", "score0", "score1", "score2"]
    assert all(isinstance(e, int) and -20 < e < 10 for e in built.output_exponents.values())
    assert -10 < built.input_exponent < 0  # [0, 1] input on an int8 power-of-two grid
    assert set(built.summary["output_saturation_rate"]) == set(built.output_exponents)
    assert built.summary["calibration_images"] == 8


def test_second_call_is_served_from_cache(built, tiny_onnx, calib_dir, cache_root) -> None:
    again = quantize_model(tiny_onnx, imgsz=64, calib_dir=calib_dir, cache_root=cache_root)
    assert again.cached and again.sha256 == built.sha256 and again.espdl_path == built.espdl_path
    assert again.seconds < 3


def test_changed_settings_miss_the_cache(built, tiny_onnx, calib_dir, cache_root) -> None:
    other = quantize_model(tiny_onnx, imgsz=64, calib_dir=calib_dir, cache_root=cache_root, calib_mode="stretch")
    assert not other.cached and other.espdl_path != built.espdl_path


def test_corrupted_entry_is_rebuilt_to_the_same_bytes(built, tiny_onnx, calib_dir, cache_root) -> None:
    data = bytearray(built.espdl_path.read_bytes())
    data[100] ^= 0xFF
    built.espdl_path.write_bytes(bytes(data))
    rebuilt = quantize_model(tiny_onnx, imgsz=64, calib_dir=calib_dir, cache_root=cache_root)
    assert not rebuilt.cached
    assert rebuilt.sha256 == built.sha256  # byte-reproducible export


def test_cli_json_in_a_process_without_hashseed(built, tiny_onnx, calib_dir, tmp_path: Path) -> None:
    """A fresh cache and PYTHONHASHSEED unset: the child-process path must give the same bytes."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    env["HIL_CACHE_DIR"] = str(tmp_path / "cache")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "host", "quantize", str(tiny_onnx), "--imgsz", "64", "--calib", str(calib_dir),
         "--out", str(out), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)  # stdout holds the JSON object only (esp-ppq's banner goes to stderr)
    assert {"espdl", "sha256", "target", "imgsz", "preset", "cached", "seconds"} <= set(result)
    assert result["sha256"] == built.sha256
    assert Path(result["espdl"]) == out / "model.espdl" and (out / "model.espdl").is_file()
    assert "PYTHONHASHSEED is not 0" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["missing.onnx", "--calib", "{calib}"], "does not exist"),
    (["{tiny}", "--imgsz", "100", "--calib", "{calib}"], "multiple of 32"),
    (["{tiny}", "--imgsz", "64", "--calib", "{empty}"], "holds no images"),
    (["{tiny}", "--imgsz", "96", "--calib", "{calib}"], "exported for input 64"),
])
def test_cli_bad_input_exits_2_with_a_message(args, message, tiny_onnx, calib_dir, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [a.format(tiny=tiny_onnx, empty=empty, calib=calib_dir) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "host", "quantize", *argv, "--out", str(tmp_path / "o")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, HIL_CACHE_DIR=str(tmp_path / "cache")),
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not (tmp_path / "o" / "model.espdl").exists()
