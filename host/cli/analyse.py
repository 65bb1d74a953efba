"""`python -m host analyse`: per-layer quantization error of a model, as a table, JSON and bar charts."""

from __future__ import annotations

import argparse
from pathlib import Path

from host.cli.quantize import add_arguments as add_quantize_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_quantize_arguments(parser)
    parser.add_argument("--layerwise", action="store_true", help="also run the layerwise analysis (slow)")
    parser.add_argument("--steps", type=int, default=4, help="calibration batches to analyse")


def run(args: argparse.Namespace) -> int:
    from host.model import analysis
    from host.cli.quantize import quantize_from_args

    model = quantize_from_args(args)
    results = analysis.analyse(model, args.calib, layerwise=args.layerwise, steps=args.steps)
    for kind, ratios in results.items():
        print(f"\n{kind} error analysis ({len(ratios)} layers, worst first)")
        print(analysis.format_table(ratios))
    for path in analysis.save(results, Path(args.out)):
        print(f"wrote {path}")
    return 0
