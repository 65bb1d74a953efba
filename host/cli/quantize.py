"""`python -m host quantize`: export and quantize a model to .espdl with embedded test values (cached)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from host.model.calib import MODES
from host.chip.targets import TARGETS
from host.model.presets import PRESETS, QAT_BATCH, QAT_EPOCHS, QAT_LR, check_qat_overrides, qat_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None,
                        help="a .pt, .yaml, split-head .onnx or .espdl (default: the bundled fixture model)")
    parser.add_argument("--target", choices=TARGETS, default="esp32p4")
    parser.add_argument("--imgsz", type=int, default=320, help="square input size, a multiple of 32")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="int8")
    parser.add_argument("--calib", type=Path, default=None, help="calibration image folder (default fixtures/calib)")
    parser.add_argument("--calib-mode", choices=MODES, default="letterbox",
                        help="letterbox = the device's preprocessing (default); stretch = Espressif's tutorial")
    parser.add_argument("--test-image", type=Path, default=None,
                        help="image whose input/outputs are embedded as test values (default: first calibration image)")
    parser.add_argument("--int16-layers", default=None, help="comma-separated op names in int16 (mixed preset)")
    parser.add_argument("--split-layers", default=None, help="comma-separated op names to weight-split (mixed preset)")
    parser.add_argument("--tqt-steps", type=int, default=None, help="TQT steps (tutorial preset; Espressif uses 500)")
    add_qat_arguments(parser)
    parser.add_argument("--espdl-version", default=None, help="esp-dl release the model must run on (default: firmware's pin)")
    parser.add_argument("--info", action="store_true", help="also export esp-ppq's .info/.json dumps (slow)")
    parser.add_argument("--out", type=Path, required=True, help="folder that receives model.espdl and model.json")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the result")


def add_qat_arguments(parser: argparse.ArgumentParser) -> None:
    """The training settings of `--preset qat`, shared by every command that quantizes with it."""
    group = parser.add_argument_group("quantization-aware training (--preset qat only)")
    group.add_argument("--qat-epochs", type=int, default=None,
                       help=f"training epochs of --preset qat (default {QAT_EPOCHS})")
    group.add_argument("--qat-lr", type=float, default=None,
                       help=f"SGD learning rate of --preset qat (default {QAT_LR:g})")
    group.add_argument("--qat-batch", type=int, default=None,
                       help=f"images per training step of --preset qat (default {QAT_BATCH})")
    group.add_argument("--qat-data", type=Path, default=None,
                       help="labelled image folder --preset qat trains on: YOLO layout (images/, labels/) or .txt "
                            "labels beside the images (default: a synthetic set generated once into the cache)")


def _layers(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(name.strip() for name in text.split(",") if name.strip())


def check_model_args(model: str | None, imgsz: int, target: str, calib: Path | None = None,
                     test_image: Path | None = None, out: Path | None = None) -> None:
    """The cheap checks of a command's model inputs, before any export or quantization starts (minutes, cold):
    input size, the model file's content, the calibration folder, the test image, the output folder."""
    from host.chip.preprocess import load_image
    from host.errors import HarnessError, require_writable_folder
    from host.model.calib import find_calibration_set
    from host.model.source import check_readable, resolve_model

    if imgsz < 32 or imgsz % 32:
        raise HarnessError(f"--imgsz {imgsz} is not a positive multiple of 32; use e.g. 320 or 640")
    check_readable(resolve_model(model, download=False), imgsz=imgsz, target=target)
    if calib is not None:
        find_calibration_set(calib)
    if test_image is not None:
        load_image(test_image)
    if out is not None:
        require_writable_folder(out, "--out")


def quantize_from_args(args: argparse.Namespace):
    """The QuantizedModel the quantize options describe (shared by the commands that need one)."""
    from host.model.presets import get_preset
    from host.model.quantize import quantize_model

    overrides = qat_overrides(args)
    check_qat_overrides(args.preset, overrides)
    check_model_args(args.model, args.imgsz, args.target, args.calib, args.test_image, args.out)
    preset = get_preset(args.preset, int16_layers=_layers(args.int16_layers),
                        split_layers=_layers(args.split_layers), tqt_steps=args.tqt_steps, **overrides)
    return quantize_model(
        args.model, target=args.target, imgsz=args.imgsz, preset=preset, calib_dir=args.calib,
        calib_mode=args.calib_mode, test_image=args.test_image, espdl_version=args.espdl_version,
        export_info=args.info, out_dir=args.out,
    )


def run(args: argparse.Namespace) -> int:
    from host.cli import stdout_to_stderr

    with stdout_to_stderr():  # esp-ppq prints on stdout: keep it for the result line / the JSON object
        result = quantize_from_args(args)
    payload = {**result.to_json(), "espdl": str(args.out / "model.espdl"), "cache_entry": str(result.espdl_path)}
    if args.json:
        print(json.dumps(payload))
    else:
        origin = "from cache" if result.cached else "built"
        print(f"{payload['espdl']}  sha256 {result.sha256}  ({origin}, {result.seconds:.1f} s)", file=sys.stdout)
    return 0
