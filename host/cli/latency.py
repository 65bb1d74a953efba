"""`python -m host latency`: baselines (`create`, `update`), the regression `gate`, and side-by-side `compare`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from host.latency.baseline import DEFAULT_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (("create", "store a latency result as the baseline of its setup"),
                       ("update", "replace the baseline of a result's setup on purpose")):
        p = sub.add_parser(name, help=text)
        p.add_argument("result", type=Path, help="latency.json written by the HIL latency test")
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
        p.add_argument("--reason", default=name)
    p = sub.add_parser("gate", help="gate a result against the stored baseline of its setup")
    p.add_argument("result", type=Path)
    p.add_argument("--baseline", type=Path, default=None, help="baseline file (default: looked up in --dir)")
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--threshold", type=float, default=0.05)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("compare", help="two results side by side (two releases, two configs)")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)


def run(args: argparse.Namespace) -> int:
    from host.errors import HarnessError
    from host.latency import baseline
    from host.latency.gate import GateSettings, failed, gate
    from host.latency.measure import summary

    if args.action in ("create", "update"):
        path = getattr(baseline, args.action)(args.result, args.dir, args.reason)
        print(f"{args.action}d baseline {path}")
        return 0
    if args.action == "gate":
        result = baseline.read_result(args.result)
        path = args.baseline or baseline.find(result["meta"], args.dir)
        if path is None:
            raise HarnessError(f"no baseline for this setup in {args.dir}; create one with "
                               f"`python -m host latency create {args.result}`")
        verdicts = gate(result, baseline.read_result(path), GateSettings(threshold=args.threshold))
        if args.json:
            print(json.dumps([v.to_json() for v in verdicts]))
        else:
            for v in verdicts:
                print(f"{v.status.upper():<11} {v.message}")
        return 1 if failed(verdicts) else 0
    a, b = baseline.read_result(args.a), baseline.read_result(args.b)
    sa, sb = summary(a), summary(b)
    print(f"{'stage':<6} {'A median ms':>12} {'B median ms':>12} {'B/A':>8}   A: {args.a.name}  B: {args.b.name}")
    for stage in sa:
        ma, mb = sa[stage]["median"] / 1000, sb[stage]["median"] / 1000
        print(f"{stage:<6} {ma:>12.3f} {mb:>12.3f} {mb / ma:>8.3f}")
    keys = sorted(set(a["meta"]) | set(b["meta"]))
    for k in keys:
        if a["meta"].get(k) != b["meta"].get(k) and k not in ("time",):
            print(f"  differs: {k}: {a['meta'].get(k)!r} vs {b['meta'].get(k)!r}")
    return 0
