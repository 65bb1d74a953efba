"""Detection power and false-alarm rate of the latency gate against the simulated DUT's latency model.

For each seeded trial, a baseline and a current result are drawn with the default window settings
(5 windows x 20 runs) from the sim's LatencyModel (the exact numbers the sim DUT sends in `bench`);
the current one unchanged, or with one stage slowed by 5 %. Prints how often the gate fails.
Goal: a 5 % slowdown fails in >= 95 of 100 trials; an unchanged run passes in >= 99 of 100.

    python tools/bench_latency_gate.py [--trials 100] [--target esp32p4] [--imgsz 320]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host.dut.sim.latency import YOLO11N_640_MACS, LatencyModel  # noqa: E402
from host.latency.gate import STAGES, GateSettings, gate  # noqa: E402

META = {"dut_kind": "sim", "target": "esp32p4", "chip_revision": 100, "model_sha256": "x" * 64, "imgsz": 320,
        "firmware_config": "sim"}


def draw(model: LatencyModel, stream: int, windows: int, runs: int) -> dict:
    return {"meta": META, "windows": [
        {s: [r[s] for r in model.sample(stream * 1000 + w, runs)] for s in STAGES} for w in range(windows)]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--target", default="esp32p4")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--slowdown", type=float, default=1.05)
    args = p.parse_args()
    macs = {"net": int(YOLO11N_640_MACS * (args.imgsz / 640) ** 2)}
    settings = GateSettings()
    print(f"gate: threshold {settings.threshold:.0%}, alpha {settings.alpha}, CI {settings.confidence:.0%}; "
          f"{args.windows} windows x {args.runs} runs; {args.trials} trials; {args.target} @ {args.imgsz}")
    print(f"{'stage':<6} {'false alarms (unchanged)':>26} {'detected (' + format(args.slowdown - 1, '.0%') + ' slower)':>22}")
    for stage in STAGES:
        false_alarms = detected = 0
        for trial in range(args.trials):
            base = LatencyModel(args.target, args.imgsz, macs, seed=2 * trial)
            same = LatencyModel(args.target, args.imgsz, macs, seed=2 * trial + 1)
            slow = LatencyModel(args.target, args.imgsz, macs, seed=2 * trial + 1, slowdown={stage: args.slowdown})
            baseline = draw(base, 1, args.windows, args.runs)
            v_same = {v.stage: v.status for v in gate(draw(same, 1, args.windows, args.runs), baseline, settings)}
            v_slow = {v.stage: v.status for v in gate(draw(slow, 1, args.windows, args.runs), baseline, settings)}
            false_alarms += v_same[stage] == "fail"
            detected += v_slow[stage] == "fail"
        print(f"{stage:<6} {false_alarms:>20} / {args.trials:<3} {detected:>16} / {args.trials}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
