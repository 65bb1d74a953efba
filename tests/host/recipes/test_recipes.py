"""`python -m host recipes`: the recipe table, its files, and what an interrupted comparison keeps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from host.errors import HarnessError
from host.runs import recipes, recipes_report

ROOT = Path(__file__).resolve().parents[3]
ROW_KEYS = {"recipe", "map50_95", "map50", "drop", "size_bytes", "seconds"}


def test_parse_recipes_keeps_the_order_and_refuses_unknown_or_repeated_names() -> None:
    assert recipes.parse_recipes("qat, float,int8") == ["qat", "float", "int8"]
    with pytest.raises(HarnessError, match="unknown recipe fp16.*choose from float,int8,mixed,tutorial,qat"):
        recipes.parse_recipes("int8,fp16")
    with pytest.raises(HarnessError, match="twice"):
        recipes.parse_recipes("int8,int8")
    with pytest.raises(HarnessError, match="none given"):
        recipes.parse_recipes(" , ")


@pytest.fixture(scope="module")
def float_and_int8(tmp_path_factory) -> tuple[dict, Path]:
    """The comparison the command prints with --json for float and int8 (int8 from the shared cache)."""
    out = tmp_path_factory.mktemp("recipes")
    proc = subprocess.run([sys.executable, "-m", "host", "recipes", "--target", "esp32p4", "--imgsz", "320",
                           "--recipes", "float,int8", "--out", str(out), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints exactly one JSON object"
    return json.loads(lines[0]), out


def test_json_has_a_row_per_recipe_with_the_issue_keys(float_and_int8) -> None:
    result, _ = float_and_int8
    assert [row["recipe"] for row in result["rows"]] == ["float", "int8"]
    for row in result["rows"]:
        assert ROW_KEYS <= set(row), row
    floating, int8 = result["rows"]
    assert 0.5 < int8["map50_95"] < 1.0 and 0.5 < floating["map50_95"] < 1.0
    assert int8["map50_95"] <= int8["map50"]
    assert int8["drop"] == pytest.approx(floating["map50_95"] - int8["map50_95"], abs=1e-4)
    assert floating["drop"] == 0.0 and floating["seconds"] is None
    assert result["complete"] and result["images"] == 16 and result["target"] == "esp32p4"


def test_int8_row_describes_the_espdl_it_scored(float_and_int8) -> None:
    result, _ = float_and_int8
    int8 = result["rows"][1]
    assert len(int8["sha256"]) == 64 and int8["size_bytes"] > 1_000_000
    assert int8["int16_layers"] == 0 and int8["preset"]["name"] == "int8"
    latency = int8["simulated_latency_ms"]
    assert latency["total"] == pytest.approx(latency["pre"] + latency["model"] + latency["post"], abs=0.2)
    assert 0 < latency["model"]
    assert "simulated" in result["latency_note"]
    assert int8["seconds"] is None or int8["seconds"] > 0


def test_the_files_hold_the_same_table(float_and_int8) -> None:
    result, out = float_and_int8
    assert json.loads((out / recipes_report.JSON_NAME).read_text()) == result
    table = (out / recipes_report.MARKDOWN_NAME).read_text()
    for row in result["rows"]:
        assert f"| {row['recipe']} | {row['map50_95']:.4f} | {row['map50']:.4f} |" in table
    assert "simulated" in table and "Incomplete" not in table
    assert (out / recipes_report.CHART_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_interrupted_comparison_keeps_its_finished_rows(monkeypatch, tmp_path) -> None:
    """The second recipe's build fails: recipes.json and recipes.md keep float and int8, marked incomplete."""
    import host.model.quantize as quantize_module
    from host.cli import main

    real = quantize_module.quantize_model

    def failing_after_int8(model, **kwargs):
        if kwargs["preset"].name != "int8":
            raise HarnessError("quantization failed in the child process (simulated)")
        return real(model, **kwargs)

    monkeypatch.setattr(quantize_module, "quantize_model", failing_after_int8)
    code = main(["recipes", "--recipes", "float,int8,mixed", "--out", str(tmp_path)])
    assert code == 2
    saved = json.loads((tmp_path / recipes_report.JSON_NAME).read_text())
    assert [row["recipe"] for row in saved["rows"]] == ["float", "int8"] and not saved["complete"]
    assert "Incomplete" in (tmp_path / recipes_report.MARKDOWN_NAME).read_text()
    assert not list(tmp_path.glob("*.tmp"))


def test_markdown_marks_cached_times_and_float_size() -> None:
    comparison = recipes.Comparison(
        model="m.pt", model_sha256="0" * 64, target="esp32p4", imgsz=320, data="d", data_sha256="1" * 64,
        images=2, objects=3, data_problems={}, fresh_cache=False, command="python -m host recipes --out x")
    comparison.rows = [
        recipes.RecipeRow("float", 0.8, 0.9, 0.0, 10_000_000, None),
        recipes.RecipeRow("int8", 0.7, 0.85, 0.1, 3_000_000, 17.0, cached=True, int16_layers=0,
                          simulated_latency_ms={"pre": 5.2, "model": 550.0, "post": 5.3, "total": 560.5}),
        recipes.RecipeRow("mixed", 0.75, 0.86, 0.05, 3_100_000, None, cached=True, int16_layers=2,
                          simulated_latency_ms={"pre": 5.2, "model": 600.0, "post": 5.3, "total": 610.5}),
    ]
    table = recipes_report.markdown(comparison)
    assert "| float | 0.8000 | 0.9000 | +0.0000 | 10,000,000 (float ONNX) | - | - | - |" in table
    assert "| int8 | 0.7000 | 0.8500 | +0.1000 | 3,000,000 | 0 | 17 (cached) | 560 |" in table
    assert "cached (time not recorded)" in table and "Incomplete" in table


@pytest.mark.slow
def test_fresh_builds_in_a_scratch_cache_and_reports_its_real_time(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "host", "recipes", "--recipes", "int8", "--fresh",
                           "--out", str(tmp_path), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    (int8,) = result["rows"]
    assert result["fresh_cache"] and not int8["cached"] and int8["seconds"] > 1.0
    assert "--fresh" in result["command"]
