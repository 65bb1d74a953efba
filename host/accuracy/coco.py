"""COCO mAP50-95 / mAP50, per-class AP and precision-recall curves of detections on a LabelledSet.

pycocotools does the scoring; this module only converts the harness's boxes and ground truth to COCO
records (category id = class index + 1, boxes as x, y, w, h in the original image's pixels).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from host.chip.detection import Box
from host.dataset import LabelledSet


@dataclass
class Accuracy:
    map50_95: float
    map50: float
    per_class: dict[int, dict[str, float]] = field(default_factory=dict)  # class -> {"ap50_95", "ap50", "gt"}
    pr_curve: list[float] = field(default_factory=list)  # precision at recall 0, .01, ..., 1 (IoU .5, all classes)
    images: int = 0
    detections: int = 0

    def to_json(self) -> dict:
        return {"map50_95": self.map50_95, "map50": self.map50, "images": self.images,
                "detections": self.detections, "per_class": {str(k): v for k, v in self.per_class.items()},
                "pr_curve_iou50": self.pr_curve}


def ground_truth(dataset: LabelledSet, names: Sequence[str]) -> dict:
    """The COCO ground-truth dict of the named images of `dataset` (image id = position in `names` + 1)."""
    items = {item.image.name: item for item in dataset.items}
    images, annotations = [], []
    for image_id, name in enumerate(names, start=1):
        item = items[name]
        images.append({"id": image_id, "file_name": name, "width": item.width, "height": item.height})
        for gt in item.boxes:
            w, h = gt.x2 - gt.x1, gt.y2 - gt.y1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": gt.category + 1,
                                "bbox": [gt.x1, gt.y1, w, h], "area": w * h, "iscrowd": 0})
    categories = [{"id": i + 1, "name": str(i)} for i in range(dataset.num_classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def evaluate(dataset: LabelledSet, detections: Mapping[str, Sequence[Box]]) -> Accuracy:
    """Score `detections` (image name -> boxes) on the images of `dataset` that have detections recorded."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    labelled = {item.image.name for item in dataset.items}
    names = sorted(n for n in detections if n in labelled)
    gt = ground_truth(dataset, names)
    results = [{"image_id": i, "category_id": b.category + 1, "bbox": [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
                "score": float(b.score)} for i, name in enumerate(names, start=1) for b in detections[name]]
    if not names or not gt["annotations"]:
        return Accuracy(0.0, 0.0, images=len(names), detections=len(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if not results:
            return Accuracy(0.0, 0.0, images=len(names), detections=0)
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # [T IoUs, R recalls, K classes, A areas, M max-dets]
    per_class = {}
    counts = {}
    for ann in gt["annotations"]:
        counts[ann["category_id"] - 1] = counts.get(ann["category_id"] - 1, 0) + 1
    for k, cat_id in enumerate(ev.params.catIds):
        cls = cat_id - 1
        if cls not in counts:
            continue
        p_all = precision[:, :, k, 0, -1]
        p50 = precision[0, :, k, 0, -1]
        per_class[cls] = {"ap50_95": _mean_valid(p_all), "ap50": _mean_valid(p50), "gt": counts[cls]}
    curve = precision[0, :, :, 0, -1]
    pr = [round(_mean_valid(curve[r]), 4) for r in range(curve.shape[0])]
    return Accuracy(round(float(ev.stats[0]), 4), round(float(ev.stats[1]), 4), per_class, pr, len(names),
                    len(results))


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return round(float(valid.mean()), 4) if valid.size else 0.0
