"""mAP of the int8 model as the device computes it, next to the float model, on the fixture test images.

The int8 detections come from the host reference (ESP-DL-exact letterbox, the PPQ-simulated int8
network, ESP-DL's yolo11 postprocess with class-agnostic NMS) at a low score threshold (0.001,
top-k 300); the float figures from tools/eval_fixture.py (ultralytics' float predictor). Both are
scored by pycocotools against the same ground truth. Goal: mAP50 drops by less than 0.05.

    PYTHONHASHSEED=0 python tools/eval_int8.py [--sizes 320 640] [--target esp32p4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.eval_fixture import IMAGES, coco_ground_truth, coco_map, evaluate  # noqa: E402


def int8_detections(model, names: dict[str, int], target: str) -> list[dict]:
    from host.chip.preprocess import load_image
    from host.reference.reference import reference

    dets = []
    for name, img_id in names.items():
        ref = reference(load_image(IMAGES / name), model, target, score_thr=0.001, top_k=300)
        for b in ref.boxes:
            x0, y0, x1, y1 = b.box
            dets.append({"image_id": img_id, "category_id": b.category + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                         "score": float(b.score)})
    return dets


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    p.add_argument("--target", default="esp32p4")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from host.model import quantize_model
    from host.model.source import FIXTURE_MODEL

    gt, names = coco_ground_truth(IMAGES / "labels.json")
    floats = evaluate(FIXTURE_MODEL, args.sizes)
    rows = {}
    for size in args.sizes:
        model = quantize_model(None, target=args.target, imgsz=size)
        q = coco_map(gt, int8_detections(model, names, args.target))
        f = floats[str(size)]
        rows[size] = {"float": f, "int8": q, "mAP50_drop": round(f["mAP50"] - q["mAP50"], 4)}
    if args.json:
        print(json.dumps(rows))
    else:
        print(f"{'imgsz':>5} {'float mAP50':>12} {'int8 mAP50':>11} {'drop':>7} {'float mAP50-95':>15} {'int8 mAP50-95':>14}")
        for size, r in rows.items():
            print(f"{size:>5} {r['float']['mAP50']:>12.4f} {r['int8']['mAP50']:>11.4f} {r['mAP50_drop']:>7.4f} "
                  f"{r['float']['mAP50_95']:>15.4f} {r['int8']['mAP50_95']:>14.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
