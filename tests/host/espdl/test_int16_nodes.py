"""Which nodes of an .espdl compute in int16, and what the simulated DUT's latency model makes of them."""

from __future__ import annotations

import pytest

from host.dut.sim.latency import INT16_MAC_COST, LatencyModel, count_macs
from host.espdl.model import load


def test_int16_nodes_are_the_layers_quantized_to_int16(quantized):
    wide = load(quantized.get("lut", "esp32p4", int16_ops=("conv1", "conv1/Swish")))
    narrow = load(quantized.get("lut", "esp32p4"))
    assert {"conv1", "conv1/Swish"} <= set(wide.int16_nodes())
    assert narrow.int16_nodes() == []


@pytest.mark.parametrize("target", ["esp32p4", "esp32s3"])
def test_int16_layers_cost_their_share_of_compute_again(target):
    macs = {"a": 3_000_000, "b": 1_000_000, "c": 0}
    plain = LatencyModel(target, 320, macs)
    widened = LatencyModel(target, 320, macs, int16_layers=frozenset({"b"}))
    assert widened.layer_us["a"] == plain.layer_us["a"] and widened.layer_us["c"] == plain.layer_us["c"]
    overhead = plain.layer_us["c"]
    assert widened.layer_us["b"] - overhead == pytest.approx(INT16_MAC_COST * (plain.layer_us["b"] - overhead))
    assert widened.base_us["model"] > plain.base_us["model"]
    assert widened.base_us["pre"] == plain.base_us["pre"] and widened.base_us["post"] == plain.base_us["post"]


def test_count_macs_and_int16_nodes_agree_on_names(quantized):
    model = load(quantized.get("lut", "esp32p4", int16_ops=("conv1",)))
    assert set(model.int16_nodes()) <= set(count_macs(model))
