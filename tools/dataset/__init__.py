"""Deterministic synthetic detection data set: shapes on textured backgrounds, YOLO labels.

The project ships its own trained YOLO11n (see docs/fixture-model.md) so the harness runs offline with a
model whose detections are real. This package generates the scenes it is trained and tested on. Every
pixel is computed with integer-seeded numpy arithmetic (no drawing library, no transcendental functions on
arrays), so the same seed gives the same pixels on any machine; PNG files are written with a fixed
compression level so, for a given Pillow/zlib, the bytes are identical too.
"""

from tools.dataset.classes import CLASS_NAMES, KINDS, KIND_TO_CLASS

__all__ = ["CLASS_NAMES", "KINDS", "KIND_TO_CLASS"]
