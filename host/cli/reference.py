"""`python -m host reference`: the host reference detections (PPQ simulation) for one image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from host.chip.detection import DEFAULT_THRESHOLDS as DEFAULTS
from host.chip.postprocess import FLOAT_MODELS
from host.chip.targets import TARGETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model to quantize (cached): .pt, .onnx or a name the model pipeline resolves")
    parser.add_argument("--image", type=Path, required=True, help="PNG or JPEG file")
    parser.add_argument("--target", choices=TARGETS, default="esp32p4")
    parser.add_argument("--imgsz", type=int, default=320, help="square model input size (default 320)")
    parser.add_argument("--preset", default="int8", help="quantization preset (see `python -m host quantize -h`)")
    parser.add_argument("--calib-dir", type=Path, help="calibration images folder (default: the pipeline's)")
    parser.add_argument("--score-thr", type=float, default=DEFAULTS.score_thr)
    parser.add_argument("--nms-thr", type=float, default=DEFAULTS.nms_thr)
    parser.add_argument("--top-k", type=int, default=DEFAULTS.top_k)
    parser.add_argument("--float-model", choices=FLOAT_MODELS, default="gcc-fastmath",
                        help="how esp-dl's compiled float code is modelled (see host/chip/postprocess.py)")
    parser.add_argument("--with-float", action="store_true",
                        help="also run the float ONNX and report per-output quantization error")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from host.chip.preprocess import load_image
    from host.cli import stdout_to_stderr
    from host.cli.quantize import check_model_args
    from host.model import quantize_model
    from host.model.presets import get_preset
    from host.reference.reference import reference

    # every cheap check first: a bad image or option must not wait for a cold quantization (minutes)
    load_image(args.image)
    get_preset(args.preset)
    check_model_args(args.model, args.imgsz, args.target, args.calib_dir)
    with stdout_to_stderr():  # esp-ppq prints on stdout: keep it for the result
        model = quantize_model(args.model, target=args.target, imgsz=args.imgsz, preset=args.preset,
                               calib_dir=args.calib_dir)
        result = reference(args.image, model, args.target, score_thr=args.score_thr, nms_thr=args.nms_thr,
                           top_k=args.top_k, float_model=args.float_model, with_float=args.with_float)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    g = result.geometry
    print(f"model {model.sha256[:16]} ({args.target}, {args.imgsz}), input exponent {result.input_exponent}, "
          f"border {list(g.border)}, {len(result.post.candidates)} candidates above the threshold")
    for i, b in enumerate(result.boxes):
        print(f"{i:3d}  class {b.category:3d}  score {b.score:.6f}  box {list(b.box)}")
    for name, err in result.errors.items():
        print(f"{name}: SNR {err.snr_db:.1f} dB, max |err| {err.max_abs:.4g}")
    return 0
