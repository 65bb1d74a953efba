"""Espressif's three YOLO11n quantization recipes side by side: mAP of each .espdl as the device computes it.

    PYTHONHASHSEED=0 YOLO_OFFLINE=1 python tools/compare_recipes.py [--recipes int8 mixed qat] [--imgsz 320]
        [--target esp32p4] [--model fixtures/model/yolo11n_fixture.pt] [--images fixtures/images]
        [--qat-epochs N --qat-lr X --qat-batch B --qat-data DIR] [--reuse-cache] [--out table.json]

Each recipe quantizes the model (`host.model.quantize_model`, the same call `python -m host quantize
--preset R` makes); its detections on the labelled images come from the bit-exact host reference
(ESP-DL letterbox, the PPQ-simulated int8/int16 network, ESP-DL's postprocess) at score 0.001, top-k
300, NMS 0.7, scored with pycocotools (host.accuracy.coco). The float rows: the float split-head ONNX
on the same letterbox and decode (host.accuracy.float_model), and ultralytics' own float predictor
(tools/eval_fixture.py, its bilinear letterbox) for a .pt model.

Times are wall-clock seconds of the whole quantization (export, calibration, training, export,
test-value alignment). By default every recipe is built in a fresh temporary cache so the times are
real; `--reuse-cache` takes the shared cache (`~/.cache/yolo11-hil`) instead and marks cached rows.
The QAT training set (default: the synthetic set host.model.qat generates) always comes from the
shared cache, so a fresh run does not spend its time generating images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_MODEL = REPO / "fixtures" / "model" / "yolo11n_fixture.pt"
DEFAULT_IMAGES = REPO / "fixtures" / "images"
EVAL = {"score_thr": 0.001, "nms_thr": 0.7, "top_k": 300}


def _detections(dataset, detect) -> dict:
    from host.chip.preprocess import load_image

    return {item.image.name: detect(load_image(item.image)) for item in dataset.items}


def quantized_accuracy(dataset, model, target: str) -> dict:
    from host.accuracy.coco import evaluate
    from host.reference.reference import reference

    acc = evaluate(dataset, _detections(dataset, lambda rgb: reference(rgb, model, target, **EVAL).boxes))
    return {"mAP50_95": acc.map50_95, "mAP50": acc.map50}


def float_accuracy(dataset, onnx_path: Path, imgsz: int) -> dict:
    from host.accuracy.coco import evaluate
    from host.accuracy.float_model import FloatDetector
    from host.chip.detection import Thresholds

    detector, thresholds = FloatDetector(onnx_path, imgsz), Thresholds(**EVAL)
    acc = evaluate(dataset, _detections(dataset, lambda rgb: detector.detect(rgb, thresholds)))
    return {"mAP50_95": acc.map50_95, "mAP50": acc.map50}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="labelled images (YOLO .txt or COCO json)")
    p.add_argument("--recipes", nargs="+", default=["int8", "mixed", "qat"])
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--target", default="esp32p4")
    p.add_argument("--calib", type=Path, default=None, help="calibration folder (default fixtures/calib)")
    p.add_argument("--qat-epochs", type=int, default=None)
    p.add_argument("--qat-lr", type=float, default=None)
    p.add_argument("--qat-batch", type=int, default=None)
    p.add_argument("--qat-data", type=Path, default=None)
    p.add_argument("--reuse-cache", action="store_true", help="use the shared cache (cached rows have no real time)")
    p.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    args = p.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")

    from host.dataset import load_dataset
    from host.errors import HarnessError
    from host.model import qat, quantize_model
    from host.model.presets import get_preset

    try:
        dataset = load_dataset(args.images)
        presets = {}
        for name in args.recipes:
            overrides = {}
            if get_preset(name).trains:
                data = args.qat_data or qat.default_training_set().folder  # shared cache: generated once
                overrides = {"qat_epochs": args.qat_epochs, "qat_lr": args.qat_lr, "qat_batch": args.qat_batch,
                             "qat_data": data}
            presets[name] = get_preset(name, **overrides)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    scratch = None if args.reuse_cache else tempfile.TemporaryDirectory(prefix="compare-recipes-")
    cache_root = Path(scratch.name) if scratch else None
    rows = []
    try:
        built = {}
        for name, preset in presets.items():
            print(f"[compare] quantizing with {name} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            model = quantize_model(args.model, target=args.target, imgsz=args.imgsz, preset=preset,
                                   calib_dir=args.calib, cache_root=cache_root)
            seconds = time.perf_counter() - started
            built[name] = model
            print(f"[compare] {name}: {seconds:.0f} s; evaluating on {len(dataset.items)} images ...",
                  file=sys.stderr, flush=True)
            row = {"recipe": name, **quantized_accuracy(dataset, model, args.target),
                   "quantize_seconds": None if model.cached else round(seconds, 1), "cached": model.cached,
                   "sha256": model.sha256, "preset": preset.describe()}
            if "qat" in model.summary:
                record = model.summary["qat"]
                row["qat"] = {k: record[k] for k in ("epochs", "lr", "batch", "steps", "images", "seconds")}
                row["qat"]["data_sha256"] = record["data"]["sha256"]
            rows.append(row)
        any_model = next(iter(built.values()))
        rows.insert(0, {"recipe": "float (ONNX, device letterbox)",
                        **float_accuracy(dataset, any_model.onnx_path, args.imgsz)})
        if args.model.suffix == ".pt":
            from tools.eval_fixture import coco_ground_truth, coco_map, detect
            from ultralytics import YOLO

            if (args.images / "labels.json").is_file():
                gt, names = coco_ground_truth(args.images / "labels.json")
                figures = coco_map(gt, detect(YOLO(str(args.model)), args.images, names, args.imgsz))
                rows.insert(1, {"recipe": "float (ultralytics predictor)", "mAP50_95": figures["mAP50_95"],
                                "mAP50": figures["mAP50"]})
    finally:
        if scratch:
            scratch.cleanup()

    result = {
        "model": str(args.model), "target": args.target, "imgsz": args.imgsz, "images": str(args.images),
        "image_count": len(dataset.items), "evaluation": EVAL, "fresh_cache": not args.reuse_cache,
        "command": "PYTHONHASHSEED=0 YOLO_OFFLINE=1 python tools/compare_recipes.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }
    print(f"{'recipe':<31} {'mAP50-95':>9} {'mAP50':>7} {'quantize s':>11}")
    for row in rows:
        seconds = row.get("quantize_seconds")
        shown = "cached" if row.get("cached") else (f"{seconds:.0f}" if seconds is not None else "-")
        print(f"{row['recipe']:<31} {row['mAP50_95']:>9.4f} {row['mAP50']:>7.4f} {shown:>11}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
