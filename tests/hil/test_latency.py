"""Latency per stage on the device clock, in windows; gated against the stored baseline of this setup."""

from __future__ import annotations

import pytest

from host.dut.sim.latency import PUBLISHED_MS
from host.hil.plugin import test_images
from host.latency import baseline as baselines
from host.latency.gate import GateSettings, failed, gate
from host.latency.measure import measure, save, summary
from host.latency.plots import distribution_plot, trend_plot
from host.chip.preprocess import load_image

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


@pytest.fixture(scope="module")
def latency(hil):
    """One windowed measurement per session, on the first test image."""
    hil.dut.detect(load_image(test_images(hil.opt("images"))[0]), **hil.thresholds())
    meta = {k: hil.provenance.get(k) for k in ("dut_kind", "target", "chip_revision", "model_sha256", "imgsz",
                                               "harness_sha", "espdl_version", "idf_version", "latency_label")}
    meta["firmware_config"] = hil.provenance.get("firmware_config") or hil.dut.kind
    result = measure(hil.dut, meta, hil.opt("bench_windows"), hil.opt("bench_runs"), hil.opt("bench_warmup"))
    save(result, hil.results.dir / "latency.json")
    return result


def test_latency_is_measured_per_stage(hil, hil_record, latency, log_metric) -> None:
    stats = summary(latency)
    plot = distribution_plot(latency, hil.results.dir / "latency_distribution.png", hil.dut.latency_label)
    for stage, s in stats.items():
        log_metric("yolo11_latency_median_us", s["median"], stage=stage, target=hil.target, dut=hil.dut.kind,
                   label=hil.dut.latency_label, imgsz=hil.model.imgsz)
        assert s["n"] == hil.opt("bench_windows") * hil.opt("bench_runs")
        assert 0 < s["min"] <= s["ci_low"] <= s["median"] <= s["ci_high"] <= s["max"], (stage, s)
    hil_record.add("latency", "bench", label=hil.dut.latency_label, runs=stats["model"]["n"], stages=stats,
                   heap=hil.dut.info().raw.get("heap"), plots=[plot.name])


def test_latency_within_baseline(hil, hil_record, latency) -> None:
    path = baselines.find(latency["meta"], hil.opt("latency_baselines"))
    if path is None:
        hil_record.add("latency-gate", "baseline", passed=None,
                       detail=f"no stored baseline for this setup ({baselines.baseline_path(latency['meta'], hil.opt('latency_baselines')).name}): comparison skipped")
        pytest.skip("no latency baseline for this setup (dut kind, chip revision, model, input size, config); "
                    "create one with `python -m host latency create reports/latency.json`")
    stored = baselines.read_result(path)
    verdicts = gate(latency, stored, GateSettings(threshold=hil.opt("latency_threshold")))
    trend = trend_plot(stored, {s: v["median"] for s, v in summary(latency).items()},
                       hil.results.dir / "latency_trend.png")
    hil_record.add("latency-gate", path.name, passed=not failed(verdicts),
                   detail="; ".join(v.message for v in verdicts), plots=[trend.name])
    assert not failed(verdicts), "\n".join(v.message for v in verdicts if v.status in ("fail", "over-budget"))


def test_board_against_published_figures(hil, hil_record, latency) -> None:
    if hil.dut.kind != "board":
        pytest.skip(f"published figures are chip measurements; the {hil.dut.kind} DUT's latencies are "
                    f"{hil.dut.latency_label}")
    key = (hil.target, hil.model.imgsz)
    if key not in PUBLISHED_MS:
        pytest.skip(f"Espressif publishes no YOLO11n figures for {hil.target} at {hil.model.imgsz}")
    stats = summary(latency)
    ratios = {s: stats[s]["median"] / 1000 / ms for s, ms in zip(("pre", "model", "post"), PUBLISHED_MS[key])}
    hil_record.add("published", "espressif_figures", passed=True,
                   detail=", ".join(f"{s} {r:.2f}x published" for s, r in ratios.items()))
    if hil.opt("published_gate"):
        assert ratios["model"] <= 1.05, f"model stage is {ratios['model']:.2f}x Espressif's published figure"
