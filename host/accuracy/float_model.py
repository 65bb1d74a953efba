"""The float model's detections, for the accuracy drop: the float split-head ONNX on the device's letterbox.

Same input geometry as the device (ESP-DL's nearest-neighbour letterbox, grey borders), float network
(onnxruntime), and the yolo11 decode in float64: sigmoid scores, DFL softmax distances, boxes mapped back
to source pixels, class-agnostic NMS, top-k - the device's postprocess without its integer shortcuts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from host.chip.detection import Box, Thresholds
from host.chip.postprocess import REG_MAX, YOLO11_STAGES
from host.chip.preprocess import letterbox_geometry


class FloatDetector:
    def __init__(self, onnx_path: Path, imgsz: int) -> None:
        from host.reference.simulate import FloatReference

        self.network = FloatReference(onnx_path)
        self.imgsz = imgsz

    def detect(self, rgb: np.ndarray, thresholds: Thresholds) -> list[Box]:
        from host.model.calib import letterbox

        height, width = rgb.shape[:2]
        geometry = letterbox_geometry(width, height, self.imgsz, self.imgsz)
        outputs = self.network.run(letterbox(rgb, self.imgsz)[None])
        boxes, scores, classes = [], [], []
        for level, (stride, offset) in enumerate(YOLO11_STAGES):
            logits = outputs[f"score{level}"][0].astype(np.float64)  # (H, W, C)
            h, w, c = logits.shape
            prob = 1.0 / (1.0 + np.exp(-logits.reshape(-1, c)))
            cls = prob.argmax(axis=1)
            best = prob[np.arange(cls.size), cls]
            keep = np.nonzero(best > thresholds.score_thr)[0]
            if keep.size == 0:
                continue
            bins = outputs[f"box{level}"][0].astype(np.float64).reshape(-1, 4, REG_MAX)[keep]
            bins = np.exp(bins - bins.max(axis=2, keepdims=True))
            dist = (bins / bins.sum(axis=2, keepdims=True)) @ np.arange(REG_MAX, dtype=np.float64)
            cx = (keep % w) * stride + offset - geometry.border_left
            cy = (keep // w) * stride + offset - geometry.border_top
            d = dist * stride
            boxes.append(np.stack([(cx - d[:, 0]) * geometry.inv_scale_x, (cy - d[:, 1]) * geometry.inv_scale_y,
                                   (cx + d[:, 2]) * geometry.inv_scale_x, (cy + d[:, 3]) * geometry.inv_scale_y], 1))
            scores.append(best[keep])
            classes.append(cls[keep])
        if not boxes:
            return []
        xyxy, score, category = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
        order = _nms(xyxy, score, thresholds.nms_thr)[: thresholds.top_k]
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width - 1)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height - 1)
        return [Box(int(category[i]), float(score[i]), *(float(v) for v in xyxy[i])) for i in order]


def _nms(xyxy: np.ndarray, score: np.ndarray, iou_thr: float) -> list[int]:
    order = list(np.argsort(-score, kind="stable"))
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    kept: list[int] = []
    while order:
        i = order.pop(0)
        kept.append(i)
        if not order:
            break
        rest = np.array(order)
        ix = np.clip(np.minimum(xyxy[i, 2], xyxy[rest, 2]) - np.maximum(xyxy[i, 0], xyxy[rest, 0]), 0, None)
        iy = np.clip(np.minimum(xyxy[i, 3], xyxy[rest, 3]) - np.maximum(xyxy[i, 1], xyxy[rest, 1]), 0, None)
        inter = ix * iy
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = [j for j, v in zip(order, iou) if v <= iou_thr]
    return kept
