"""Latency per stage on the device clock, in windows; gated against the stored baseline of this setup."""

from __future__ import annotations

import pytest

from host.dut.sim.latency import PUBLISHED_MS
from host.errors import HarnessError
from host.hil.state import load_test_image
from host.latency import baseline as baselines
from host.latency.gate import GateSettings, failed, gate
from host.latency.measure import measure, save, summary
from host.latency.plots import distribution_plot, trend_plot

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


@pytest.fixture(scope="module")
def latency(hil_state, hil_options, hil_dut, hil_results, hil_images):
    """One windowed measurement per session, on the first readable test image (an unreadable one is its
    own detect test's failure, not the latency tests')."""
    for path in hil_images:
        try:
            rgb = load_test_image(hil_state, path)
            break
        except HarnessError:
            continue
    else:
        pytest.fail(f"no readable image in {hil_options.images} to time: every one failed to load")
    hil_dut.detect(rgb, hil_options.thresholds)
    p = hil_state.provenance
    meta = {k: p.get(k) for k in ("dut_kind", "target", "chip_revision", "model_sha256", "imgsz",
                                  "harness_sha", "espdl_version", "idf_version", "latency_label", "firmware_config")}
    meta["image"] = path.name
    result = measure(hil_dut, meta, hil_options.bench_windows, hil_options.bench_runs, hil_options.bench_warmup)
    save(result, hil_results.dir / "latency.json")
    return result


def test_latency_is_measured_per_stage(hil_options, hil_dut, hil_model, hil_record, latency, log_metric) -> None:
    stats = summary(latency)
    plot = distribution_plot(latency, hil_record.dir / "latency_distribution.png", hil_dut.latency_label)
    for stage, s in stats.items():
        log_metric("yolo11_latency_median_us", s["median"], stage=stage, target=hil_options.target,
                   dut=hil_dut.kind, label=hil_dut.latency_label, imgsz=hil_model.imgsz)
        assert s["n"] == hil_options.bench_windows * hil_options.bench_runs
        assert 0 < s["min"] <= s["ci_low"] <= s["median"] <= s["ci_high"] <= s["max"], (stage, s)
    hil_record.add("latency", "bench", label=hil_dut.latency_label, runs=stats["model"]["n"], stages=stats,
                   heap=hil_dut.info().raw.get("heap"), plots=[plot.name])


def test_latency_within_baseline(hil_options, hil_record, latency) -> None:
    folder = hil_options.latency_baselines
    path = baselines.find(latency["meta"], folder)
    if path is None:
        name = baselines.baseline_path(latency["meta"], folder).name
        hil_record.add("latency-gate", "baseline", passed=None,
                       detail=f"no stored baseline for this setup ({name}): comparison skipped")
        pytest.skip("no latency baseline for this setup (dut kind, chip revision, model, input size, config); "
                    "create one with `python -m host latency create reports/latency.json`")
    stored = baselines.read_result(path)
    verdicts = gate(latency, stored, GateSettings(threshold=hil_options.latency_threshold))
    trend = trend_plot(stored, {s: v["median"] for s, v in summary(latency).items()},
                       hil_record.dir / "latency_trend.png")
    hil_record.add("latency-gate", path.name, passed=not failed(verdicts),
                   detail="; ".join(v.message for v in verdicts), plots=[trend.name])
    assert not failed(verdicts), "\n".join(v.message for v in verdicts if v.status in ("fail", "over-budget"))


def test_board_against_published_figures(hil_options, hil_dut, hil_model, hil_record, latency) -> None:
    if not hil_dut.timed:
        pytest.skip(f"published figures are chip measurements; the {hil_dut.kind} DUT's latencies are "
                    f"{hil_dut.latency_label}")
    key = (hil_options.target, hil_model.imgsz)
    if key not in PUBLISHED_MS:
        pytest.skip(f"Espressif publishes no YOLO11n figures for {hil_options.target} at {hil_model.imgsz}")
    stats = summary(latency)
    ratios = {s: stats[s]["median"] / 1000 / ms for s, ms in zip(("pre", "model", "post"), PUBLISHED_MS[key])}
    within = ratios["model"] <= 1.05
    hil_record.add("published", "espressif_figures", passed=within or not hil_options.published_gate,
                   detail=", ".join(f"{s} {r:.2f}x published" for s, r in ratios.items()))
    if hil_options.published_gate:
        assert within, f"model stage is {ratios['model']:.2f}x Espressif's published figure"
