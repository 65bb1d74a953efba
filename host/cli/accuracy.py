"""`python -m host accuracy`: accuracy baselines (`create`, `update`), the `gate`, and `show` of an accuracy.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from host.accuracy.baseline import DEFAULT_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (("create", "store an accuracy result as the baseline of its setup"),
                       ("update", "replace the baseline of a result's setup on purpose")):
        p = sub.add_parser(name, help=text)
        p.add_argument("result", type=Path, help="accuracy.json written by the HIL accuracy run (--dataset)")
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
        p.add_argument("--reason", default=name)
    p = sub.add_parser("gate", help="gate a result against the stored baseline of its setup (exit 1 on a drop)")
    p.add_argument("result", type=Path)
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--tolerance", type=float, default=0.0, help="allowed mAP50-95 shortfall")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("show", help="the figures and gates of an accuracy.json")
    p.add_argument("result", type=Path)


def run(args: argparse.Namespace) -> int:
    from host.accuracy import baseline
    from host.errors import HarnessError

    if args.action in ("create", "update"):
        path = getattr(baseline, args.action)(args.result, args.dir, args.reason)
        print(f"{args.action}d accuracy baseline {path}")
        return 0
    result = baseline.read_result(args.result)
    if args.action == "gate":
        stored = baseline.find(result["setup"], args.dir)
        if stored is None:
            raise HarnessError(f"no accuracy baseline for this setup in {args.dir}; create one with "
                               f"`python -m host accuracy create {args.result}`")
        base, got = float(stored["device"]["map50_95"]), float(result["device"]["map50_95"])
        ok = got >= base - args.tolerance
        verdict = {"verdict": "pass" if ok else "fail", "device_map50_95": got, "baseline_map50_95": base,
                   "tolerance": args.tolerance}
        print(json.dumps(verdict) if args.json else
              f"{verdict['verdict'].upper()}: mAP50-95 {got} vs baseline {base} (tolerance {args.tolerance})")
        return 0 if ok else 1
    print(f"{'engine':<10} {'mAP50-95':>9} {'mAP50':>7} {'images':>7}")
    for engine in ("device", "reference", "float"):
        figures = result.get(engine)
        if figures:
            print(f"{engine:<10} {figures['map50_95']:>9.4f} {figures['map50']:>7.4f} {figures.get('images', ''):>7}")
    for name, gate in result.get("gates", {}).items():
        print(f"gate {name}: {gate['verdict'].upper()} - {gate['message']}")
    if result.get("problem_counts"):
        print("problems: " + ", ".join(f"{k} {v}" for k, v in result["problem_counts"].items()))
    return 0
