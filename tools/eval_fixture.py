"""Float accuracy of a YOLO .pt on the committed fixture test images: COCO mAP50 and mAP50-95 (pycocotools).

    python -m tools.eval_fixture [--model fixtures/model/yolo11n_fixture.pt] [--imgsz 320 640] [--json]
    python -m tools.eval_fixture --write-metadata     # store the figures in fixtures/model/metadata.json

Inference is ultralytics' own float predictor with conf 0.001 and NMS IoU 0.7 (the usual mAP settings),
letterboxed to the full square (rect=False), as the device does. Ground truth and detections are written
in COCO format here, so the figures come from pycocotools alone.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

IMAGES = REPO / "fixtures" / "images"
MODEL_DIR = REPO / "fixtures" / "model"
DEFAULT_MODEL = MODEL_DIR / "yolo11n_fixture.pt"


def coco_ground_truth(labels_json: Path) -> tuple[dict, dict[str, int]]:
    """COCO GT dict from the fixtures' pixel boxes; category id = class index + 1 (COCO ids start at 1)."""
    labels = json.loads(labels_json.read_text())
    images, anns, ids = [], [], {}
    for img_id, (name, entry) in enumerate(sorted(labels.items()), start=1):
        ids[name] = img_id
        images.append({"id": img_id, "file_name": name, "width": entry["width"], "height": entry["height"]})
        for box in entry["boxes"]:
            x0, y0, x1, y1 = box["xyxy"]
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": box["class"] + 1,
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    categories = [{"id": i + 1, "name": str(i)} for i in range(80)]
    return {"images": images, "annotations": anns, "categories": categories}, ids


def detect(model: object, image_dir: Path, names: dict[str, int], imgsz: int) -> list[dict]:
    """Float detections in COCO result format."""
    dets = []
    for name, img_id in names.items():
        res = model.predict(str(image_dir / name), imgsz=imgsz, conf=0.001, iou=0.7, max_det=300, rect=False,
                            device="cpu", verbose=False)[0]
        xyxy = res.boxes.xyxy.tolist()
        for (x0, y0, x1, y1), score, cls in zip(xyxy, res.boxes.conf.tolist(), res.boxes.cls.tolist()):
            dets.append({"image_id": img_id, "category_id": int(cls) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                         "score": float(score)})
    return dets


def coco_map(gt: dict, dets: list[dict]) -> dict[str, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if not dets:
            return {"mAP50": 0.0, "mAP50_95": 0.0}
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"mAP50": round(float(ev.stats[1]), 4), "mAP50_95": round(float(ev.stats[0]), 4)}


def false_positives_on_empty(dets: list[dict], gt: dict, conf: float = 0.25) -> int:
    """Detections above `conf` on images without any object (COCO mAP ignores them)."""
    empty = {im["id"] for im in gt["images"]} - {a["image_id"] for a in gt["annotations"]}
    return sum(1 for d in dets if d["image_id"] in empty and d["score"] >= conf)


def evaluate(model_path: Path, sizes: list[int]) -> dict[str, dict[str, float]]:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    gt, names = coco_ground_truth(IMAGES / "labels.json")
    model = YOLO(str(model_path))
    out = {}
    for s in sizes:
        dets = detect(model, IMAGES, names, s)
        out[str(s)] = {**coco_map(gt, dets), "fp_on_empty_conf0.25": false_positives_on_empty(dets, gt)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.eval_fixture", description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--imgsz", type=int, nargs="+", default=[320, 640])
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--write-metadata", action="store_true", help="store figures in fixtures/model/metadata.json")
    args = p.parse_args(argv)
    if not args.model.exists():
        print(f"error: model {args.model} not found; train it with `python -m tools.train_fixture` or pass --model",
              file=sys.stderr)
        return 2
    figures = evaluate(args.model, args.imgsz)
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(f"{'imgsz':>6} {'mAP50':>7} {'mAP50-95':>9} {'FP on empty (conf>=0.25)':>25}")
        for s, f in figures.items():
            print(f"{s:>6} {f['mAP50']:>7.4f} {f['mAP50_95']:>9.4f} {f['fp_on_empty_conf0.25']:>25d}")
    if args.write_metadata:
        import hashlib

        meta_path = MODEL_DIR / "metadata.json"
        meta = json.loads(meta_path.read_text())
        digest = hashlib.sha256(args.model.read_bytes()).hexdigest()
        if meta.get("sha256") != digest:
            print(f"error: {args.model} (sha256 {digest[:12]}) is not the model described by {meta_path}; "
                  "evaluate the published weights or re-run tools.train_fixture", file=sys.stderr)
            return 2
        meta["evaluation"] = {"command": "python -m tools.eval_fixture --imgsz " + " ".join(map(str, args.imgsz)),
                              "images": "fixtures/images (see manifest.json)", "conf": 0.001, "iou": 0.7,
                              "letterbox": "square (rect=False)", "float": figures}
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
