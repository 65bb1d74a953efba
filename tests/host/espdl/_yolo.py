"""Kept only for tools/bench_emulator.py, which imports `_yolo` from this folder: the builders live in
tests/host/builders.py (point the tool there and delete this file)."""

from tests.host.builders import export_random_yolo11n, write_calibration_images

__all__ = ["export_random_yolo11n", "write_calibration_images"]
