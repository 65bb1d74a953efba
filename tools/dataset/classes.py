"""The object kinds of the synthetic data set and the COCO class indices they are trained as.

The fixture model keeps exactly the COCO graph (an 80-class head) so the harness exercises the same
tensor shapes as the real yolo11n.pt. Only seven class slots are trained; the others are named
"unused_<i>" rather than borrowing COCO names, so a detection printed as "person" can never be
mistaken for a real person detector. The slots include 0 and 79 so a class-index off-by-one in a
postprocess (device or host) shows up as a wrong or missing class at either end of the range.
"""

from __future__ import annotations

NUM_CLASSES = 80

# kind -> class index in the 80-class head
KIND_TO_CLASS: dict[str, int] = {
    "disc": 0,
    "ring": 9,
    "block": 24,
    "frame": 41,
    "triangle": 58,
    "cross": 67,
    "star": 79,
}
KINDS: tuple[str, ...] = tuple(KIND_TO_CLASS)

CLASS_NAMES: list[str] = [f"unused_{i}" for i in range(NUM_CLASSES)]
for _kind, _cls in KIND_TO_CLASS.items():
    CLASS_NAMES[_cls] = _kind
