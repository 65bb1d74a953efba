"""Cold and warm times of the quantize pipeline at 320 and 640, next to a bare `espdl_quantize_onnx` call.

The bare call gets the same exported ONNX, the same calibration tensors and the same settings, with
its imports already paid, so "overhead" is everything the pipeline adds: loading and exporting the
model, reading the calibration images, hashing and cache bookkeeping, saving the graph, the summary.

    PYTHONHASHSEED=0 python tools/bench_pipeline.py [--model fixture|yolo11n.yaml|PATH] [--sizes 320 640]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bare_call(onnx_path: Path, images, test_input, imgsz: int, out: Path) -> float:
    import torch
    from esp_ppq import QuantizationSettingFactory
    from esp_ppq.api import espdl_quantize_onnx

    work = out / "bare.onnx"
    shutil.copyfile(onnx_path, work)
    batches = [torch.from_numpy(images[i:i + 8]) for i in range(0, len(images), 8)]
    started = time.perf_counter()
    espdl_quantize_onnx(onnx_import_file=str(work), espdl_export_file=str(out / "bare.espdl"),
                        calib_dataloader=batches, calib_steps=max(2, len(batches)),
                        input_shape=[1, 3, imgsz, imgsz], inputs=[torch.from_numpy(test_input)], target="esp32p4",
                        collate_fn=lambda x: x, setting=QuantizationSettingFactory.espdl_setting(), device="cpu",
                        error_report=False, export_config=False, export_test_values=True, verbose=0)
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="default: the bundled fixture model")
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    args = p.parse_args()
    import torch  # noqa: F401 - pay the imports before timing anything
    import esp_ppq  # noqa: F401
    from esp_ppq.log import NaiveLogger

    from host.model import calib, quantize_model

    for name in ("ESPDL", "PPQ"):
        NaiveLogger.get_logger(name).set_level("warning")
    rows = []
    for imgsz in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            started = time.perf_counter()
            cold = quantize_model(args.model, imgsz=imgsz, cache_root=tmp / "cache")
            cold_s = time.perf_counter() - started
            started = time.perf_counter()
            warm = quantize_model(args.model, imgsz=imgsz, cache_root=tmp / "cache")
            warm_s = time.perf_counter() - started
            assert warm.cached and warm.sha256 == cold.sha256
            cset = calib.find_calibration_set(None)
            images = calib.calibration_tensors(cset, imgsz)
            bare_s = bare_call(cold.onnx_path, images, images[:1], imgsz, tmp)
            rows.append((imgsz, cold_s, warm_s, bare_s, cold.summary.get("export_max_abs_diff")))
    print(f"{'imgsz':>5} {'cold s':>8} {'warm s':>8} {'bare espdl_quantize_onnx s':>27} {'cold/bare':>10} {'export max|diff|':>17}")
    for imgsz, cold_s, warm_s, bare_s, diff in rows:
        print(f"{imgsz:>5} {cold_s:>8.2f} {warm_s:>8.2f} {bare_s:>27.2f} {cold_s / bare_s:>10.2f} {diff!s:>17}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
