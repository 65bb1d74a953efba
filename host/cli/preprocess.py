"""`python -m host preprocess`: ESP-DL-exact letterbox preprocess of one image to an int8 (or int16) NHWC .npy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from host.chip.preprocess import preprocess, tensor_sha256
from host.chip.targets import TARGETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="PNG or JPEG file (decoded to RGB888 with Pillow)")
    parser.add_argument("--imgsz", type=int, default=640, help="square model input size (default 640)")
    parser.add_argument("--input-exponent", type=int, required=True,
                        help="the model input's exponent (see `python -m host espdl info`), e.g. -7")
    parser.add_argument("--target", choices=TARGETS, default="esp32p4", help="chip whose rounding to use")
    parser.add_argument("--bits", type=int, choices=(8, 16), default=8,
                        help="the model input's width: 16 when its first layer is int16 (e.g. the mixed preset)")
    parser.add_argument("--out", type=Path, help="write the int8 NHWC [1,H,W,3] tensor to this .npy file")
    parser.add_argument("--json", action="store_true", help="print geometry, shape and sha256 as JSON")


def run(args: argparse.Namespace) -> int:
    tensor, geometry = preprocess(args.image, args.imgsz, args.input_exponent, args.target, bits=args.bits)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.out, tensor)
    info = {
        "image": str(args.image),
        "target": args.target,
        "input_exponent": args.input_exponent,
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype),
        "sha256": tensor_sha256(tensor),
        "border": list(geometry.border),
        "inv_scale": [geometry.inv_scale_x, geometry.inv_scale_y],
        "source": [geometry.src_width, geometry.src_height],
        "out": str(args.out) if args.out is not None else None,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        t, b, l, r = geometry.border
        print(f"{args.image}: {geometry.src_width}x{geometry.src_height} -> {list(tensor.shape)} {tensor.dtype}, "
              f"border top {t} bottom {b} left {l} right {r}, inv_scale {geometry.inv_scale_x!r} "
              f"{geometry.inv_scale_y!r}")
        print(f"sha256 {info['sha256']}" + (f", written to {args.out}" if args.out is not None else ""))
    return 0
