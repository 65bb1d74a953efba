"""What a YOLO11n detection is on ESP-DL, defined once: the six head outputs, the box, the thresholds.

The split-head export names the raw outputs `box0, score0, box1, score1, box2, score2` (strides 8, 16,
32); esp-dl's yolo11PostProcessor turns them into boxes with a float32 score and integer corners,
under a score threshold, an NMS IoU threshold and a top-k, whose defaults are those of esp-dl's
examples/yolo11_detect (coco_detect.cpp).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: The six raw outputs of the split detection head, in stride order (8, 16, 32).
OUTPUT_NAMES: tuple[str, ...] = ("box0", "score0", "box1", "score1", "box2", "score2")
#: The graph input name of every model the harness exports (ultralytics' name).
INPUT_NAME = "images"


@dataclass(frozen=True)
class Box:
    """One detection exactly as esp-dl reports it: category, float32 score, integer x1 y1 x2 y2."""

    category: int
    score: float
    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x1, self.y1, self.x2, self.y2)

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "score": self.score, "box": list(self.box)}


@dataclass(frozen=True)
class Thresholds:
    """The postprocess settings the device and the reference both apply (esp-dl's example defaults)."""

    score_thr: float = 0.25
    nms_thr: float = 0.7
    top_k: int = 10

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_THRESHOLDS = Thresholds()
