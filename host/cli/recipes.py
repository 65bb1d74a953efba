"""`python -m host recipes`: Espressif's YOLO11n quantization recipes compared on a labelled set.

Writes recipes.json (after every finished recipe), recipes.md and recipes.png into --out; prints the
Markdown table, or with --json the one JSON object (rows keyed recipe, map50_95, map50, drop, size_bytes,
seconds, ...). Recipes come from the shared model cache unless --fresh builds each in a scratch cache, so
that the quantize times are this machine's real ones.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

from host.chip.targets import TARGETS
from host.cli.quantize import add_qat_arguments, qat_overrides
from host.runs.recipes import RECIPES

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO / "fixtures" / "images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None,
                        help="a .pt, .yaml or split-head .onnx (default: the bundled fixture model)")
    parser.add_argument("--target", choices=TARGETS, default="esp32p4")
    parser.add_argument("--imgsz", type=int, default=320, help="square input size, a multiple of 32")
    parser.add_argument("--recipes", default=",".join(RECIPES),
                        help=f"comma-separated, in the order of the table (default {','.join(RECIPES)})")
    parser.add_argument("--data", type=Path, default=None,
                        help="labelled validation images: YOLO labels or a COCO .json (default fixtures/images)")
    parser.add_argument("--calib", type=Path, default=None, help="calibration image folder (default fixtures/calib)")
    add_qat_arguments(parser)
    parser.add_argument("--fresh", action="store_true",
                        help="build every recipe in a scratch cache (real quantize times; slow, QAT takes minutes)")
    parser.add_argument("--out", type=Path, required=True, help="folder for recipes.json, recipes.md, recipes.png")
    parser.add_argument("--json", action="store_true", help="print the comparison as one JSON object")


def _command(args: argparse.Namespace) -> str:
    """The command that reproduces this comparison, for the table's footnote."""
    parts = ["python", "-m", "host", "recipes"] + ([str(args.model)] if args.model else [])
    parts += ["--target", args.target, "--imgsz", str(args.imgsz), "--recipes", args.recipes]
    for flag, value in (("--data", args.data), ("--calib", args.calib)):
        if value is not None:
            parts += [flag, str(value)]
    for field, value in qat_overrides(args).items():
        parts += ["--" + field.replace("_", "-"), str(value)]
    parts += (["--fresh"] if args.fresh else []) + ["--out", str(args.out)] + (["--json"] if args.json else [])
    return "PYTHONHASHSEED=0 " + shlex.join(parts)


def _presets(names: list[str], args: argparse.Namespace) -> dict:
    """The preset of every quantized recipe, checked before anything is built."""
    from host.errors import HarnessError
    from host.model import qat
    from host.model.presets import check_qat_overrides, get_preset

    overrides = qat_overrides(args)
    if overrides and "qat" not in names:
        flags = ", ".join("--" + k.replace("_", "-") for k in overrides)
        raise HarnessError(f"{flags} set the qat recipe, which --recipes {args.recipes!r} leaves out; "
                           "add qat to --recipes or drop the flags")
    presets = {}
    for name in names:
        if name == "float":
            continue
        if name == "qat":
            check_qat_overrides("qat", overrides)
            preset = get_preset("qat", **overrides)
            if preset.qat_data is None:  # from the shared cache even with --fresh: generating it is not the recipe
                preset = get_preset("qat", **{**overrides, "qat_data": qat.default_training_set().folder})
            presets[name] = preset
        else:
            presets[name] = get_preset(name)
    presets.setdefault("int8", get_preset("int8"))  # float alone: the int8 build exports the float ONNX
    return presets


def run(args: argparse.Namespace) -> int:
    from host.cli import stdout_to_stderr
    from host.cli.quantize import check_model_args
    from host.dataset import load_dataset
    from host.errors import HarnessError
    from host.model.quantize import quantize_model
    from host.model.source import resolve_model
    from host.runs import recipes, recipes_report

    names = recipes.parse_recipes(args.recipes)
    check_model_args(args.model, args.imgsz, args.target, args.calib, None, args.out)
    source = resolve_model(args.model, download=False)
    if source.path is not None and not source.needs_quantization:
        raise HarnessError(f"{source.path} is already quantized (.espdl): recipes quantizes a model with each "
                           "recipe; give the .pt or split-head .onnx it came from (to test the .espdl, run "
                           f"pytest --target {args.target} --model={source.path})")
    data = args.data or DEFAULT_DATA
    dataset = load_dataset(data, option="--data")
    presets = _presets(names, args)

    def log(message: str) -> None:
        print(f"[recipes] {message}", file=sys.stderr, flush=True)

    if dataset.problems:
        log(f"{len(dataset.problems)} image(s) of {data} left out: {dataset.problem_counts()}")
    comparison = recipes.Comparison(
        model=str(source.path or source.name), model_sha256=source.sha256, target=args.target, imgsz=args.imgsz,
        data=str(data), data_sha256=dataset.digest(), images=len(dataset.items),
        objects=sum(len(item.boxes) for item in dataset.items), data_problems=dataset.problem_counts(),
        fresh_cache=args.fresh, command=_command(args))
    scratch = tempfile.TemporaryDirectory(prefix="hil-recipes-") if args.fresh else None
    cache_root = Path(scratch.name) if scratch else None

    def quantize(model, preset):
        return quantize_model(model, target=args.target, imgsz=args.imgsz, preset=preset, calib_dir=args.calib,
                              cache_root=cache_root)

    try:
        with stdout_to_stderr():  # esp-ppq prints on stdout: keep it for the table / the JSON object
            recipes.compare(comparison, names, presets, dataset, args.model, quantize,
                            on_row=lambda c: recipes_report.save_json(c, args.out), log=log)
    finally:
        paths = recipes_report.write_all(comparison, args.out)  # an interrupted run keeps its finished rows
        if scratch:
            scratch.cleanup()
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    if args.json:
        print(json.dumps(comparison.to_json()))
    else:
        print(recipes_report.markdown(comparison), end="")
    return 0
