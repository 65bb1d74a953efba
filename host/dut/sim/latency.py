"""The simulated DUT's latency model: what a board would plausibly measure, labelled `simulated` everywhere.

Calibrated on Espressif's published YOLO11n figures (esp-dl models/coco_detect/README.md):

| target  | input | pre ms | model ms | post ms |
|---------|-------|--------|----------|---------|
| esp32p4 | 640   | 16.0   | 2535.3   | 14.3    |
| esp32p4 | 320   | 5.2    | 550.1    | 5.3     |
| esp32s3 | 640   | 51.5   | 26014.2  | 58.9    |
| esp32s3 | 320   | 15.2   | 6161.8   | 19.3    |

- preprocess: affine in the model's input pixels (fits both rows exactly);
- postprocess: affine in the number of anchors (8400 at 640, 2100 at 320);
- model: a power law in multiply-accumulates, `t640 * (macs / macs640) ** p`, with p fitted to the
  two rows (1.102 on P4, 1.039 on S3: large inputs spill caches); each layer's share of the total is
  its share of the MACs plus a fixed per-node overhead, which is what `profile` reports;
- int16 layers (mixed precision): each of their MACs costs INT16_MAC_COST int8 MACs. An assumption, not a
  published figure: the P4's and S3's 128-bit SIMD holds half as many int16 lanes as int8 lanes.
Run-to-run noise is multiplicative and lognormal with a seeded generator (one stream per request),
so a sim run is reproducible; `slowdown` multiplies a stage, for the latency gate's own tests.
With a modelled link (`--sim-link uart2m|usj`, host/dut/sim/link.py) the sim also takes these times:
every detect, bench run, selftest and profile lasts at least what this model reports for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: MACs of YOLO11n at 640 as counted by `count_macs` on the split-head export (Conv + MatMul).
YOLO11N_640_MACS = 3_230_000_000

PUBLISHED_MS = {  # (target, imgsz) -> (pre, model, post)
    ("esp32p4", 640): (16.0, 2535.3, 14.3),
    ("esp32p4", 320): (5.2, 550.1, 5.3),
    ("esp32s3", 640): (51.5, 26014.2, 58.9),
    ("esp32s3", 320): (15.2, 6161.8, 19.3),
}
NODE_OVERHEAD_US = {"esp32p4": 40.0, "esp32s3": 120.0}
INT16_MAC_COST = 2.0


def _affine(x: float, x1: float, y1: float, x2: float, y2: float) -> float:
    return y1 + (x - x1) * (y2 - y1) / (x2 - x1)


def count_macs(model) -> dict[str, int]:
    """Multiply-accumulates per node of an EspdlModel (Conv, Gemm, MatMul); other nodes count 0."""
    shapes = {vi.name: vi.shape for vi in (*model.inputs, *model.outputs, *model.value_info.values()) if vi.shape}
    macs: dict[str, int] = {}
    for node in model.nodes:
        out_shape = shapes.get(node.outputs[0]) if node.outputs else None
        count = 0
        if node.op_type in ("Conv", "Gemm") and out_shape and len(node.inputs) > 1:
            weight = model.initializers.get(node.inputs[1])
            if weight is not None:
                dims = weight.array.shape  # natural layout; product of all but the output channels
                out_elems = int(np.prod(out_shape))
                per_output = int(np.prod(dims)) // max(1, int(out_shape[-1]))
                count = out_elems * per_output
        elif node.op_type == "MatMul" and out_shape:
            a = shapes.get(node.inputs[0])
            if a:
                count = int(np.prod(out_shape)) * int(a[-1])
        macs[node.name] = count
    return macs


@dataclass
class LatencyModel:
    target: str
    imgsz: int
    layer_macs: dict[str, int]
    seed: int = 0
    noise: dict[str, float] = field(default_factory=lambda: {"pre": 0.02, "model": 0.004, "post": 0.03})
    slowdown: dict[str, float] = field(default_factory=dict)
    int16_layers: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        pre640, model640, post640 = PUBLISHED_MS[(self.target, 640)]
        pre320, model320, post320 = PUBLISHED_MS[(self.target, 320)]
        pixels = self.imgsz * self.imgsz
        anchors = sum((self.imgsz // s) ** 2 for s in (8, 16, 32))
        self.base_us = {
            "pre": 1000 * _affine(pixels, 320 * 320, pre320, 640 * 640, pre640),
            "post": 1000 * _affine(anchors, 2100, post320, 8400, post640),
        }
        exponent = math.log(model640 / model320) / math.log(4.0)
        total_macs = max(1, sum(self.layer_macs.values()))
        compute_us = 1000 * model640 * (total_macs / YOLO11N_640_MACS) ** exponent
        overhead = NODE_OVERHEAD_US[self.target]
        self.layer_us = {
            name: compute_us * macs * (INT16_MAC_COST if name in self.int16_layers else 1.0) / total_macs + overhead
            for name, macs in self.layer_macs.items()
        }
        self.base_us["model"] = sum(self.layer_us.values())

    def _rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, stream])

    def sample(self, stream: int, runs: int = 1) -> list[dict[str, int]]:
        """`runs` draws of per-stage microseconds, reproducible for a given (seed, stream)."""
        rng = self._rng(stream)
        out = []
        for _ in range(runs):
            row = {}
            for stage in ("pre", "model", "post"):
                factor = math.exp(rng.normal(0.0, self.noise[stage])) * self.slowdown.get(stage, 1.0)
                row[stage] = max(1, int(round(self.base_us[stage] * factor)))
            out.append(row)
        return out

    def profile(self, stream: int) -> dict[str, int]:
        rng = self._rng(stream)
        scale = self.slowdown.get("model", 1.0)
        return {name: max(1, int(round(us * scale * math.exp(rng.normal(0.0, self.noise["model"])))))
                for name, us in self.layer_us.items()}
