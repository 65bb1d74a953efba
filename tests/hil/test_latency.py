"""Latency and memory per stage, measured with `bench` on the device clock and reported (not gated here)."""

import pytest

from host.hil.plugin import test_images
from host.latency.stats import stage_stats
from host.reference.preprocess import load_image

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


def test_bench_reports_every_stage(hil, hil_record) -> None:
    first = test_images(hil.opt("images"))[0]
    hil.dut.detect(load_image(first), **hil.thresholds())  # bench times the last detected image
    runs, warmup = hil.opt("bench_runs"), hil.opt("bench_warmup")
    result = hil.dut.bench(runs, warmup)
    stages = {s: stage_stats(result.stage(s)).to_json() for s in ("pre", "model", "post")}
    info = hil.dut.info()
    hil_record.add("latency", "bench", label=hil.dut.latency_label, runs=runs, warmup=warmup, stages=stages,
                   heap=info.raw.get("heap"), raw={s: result.stage(s).tolist() for s in ("pre", "model", "post")})
    for stage, s in stages.items():
        assert s["n"] == runs and 0 < s["min"] <= s["median"] <= s["max"], (stage, s)
