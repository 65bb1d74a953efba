"""Benchmark: host emulator time per image for YOLO11n next to ESP-PPQ's TorchExecutor on the same input.

    python tools/bench_emulator.py [--sizes 320 640] [--repeat 5] [--threads 1 2] [--espdl FILE ...]

Without --espdl it builds a seeded random-weight YOLO11n (as the tests do), quantizes it with the
harness pipeline (cached) for ESP32-P4 at each size, and times both engines on the embedded test input.
With --espdl it times the emulator alone on the given files (no PPQ graph to compare with).
Prints one table: median wall and CPU seconds per image over --repeat runs after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "host" / "espdl"))


def _median_time(fn, repeat: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of this process) per call, after one warm-up.

    On a busy machine the CPU time of a single-threaded run is the better estimate of its idle wall time.
    """
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _emulator_rows(label: str, model, x: np.ndarray, threads: list[int | None], repeat: int) -> list[tuple]:
    from host.espdl import Emulator

    rows = []
    for t in threads:
        em = Emulator(model, "esp32p4", threads=t)
        wall, cpu = _median_time(lambda: em.run({model.inputs[0].name: x}), repeat)
        rows.append((label, f"emulator, BLAS threads {t if t is not None else 'default'}", wall, cpu))
    return rows


def _ppq_row(label: str, graph_path: Path, model, x: np.ndarray, repeat: int) -> tuple:
    import torch
    from esp_ppq.api import load_native_graph
    from esp_ppq.executor import TorchExecutor

    graph = load_native_graph(str(graph_path))
    executor = TorchExecutor(graph, device="cpu")
    xf = torch.from_numpy(x.astype(np.float32) * 2.0 ** model.inputs[0].exponent).permute(0, 3, 1, 2).contiguous()
    names = [vi.name for vi in model.outputs]

    def once():
        with torch.no_grad():
            executor.forward(inputs=xf, output_names=names)

    return (label, f"ESP-PPQ TorchExecutor, torch threads {torch.get_num_threads()}", *_median_time(once, repeat))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--espdl", type=Path, nargs="*", help="time these .espdl files instead (emulator only)")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")

    from host.espdl import load

    rows: list[tuple] = []
    if args.espdl:
        for path in args.espdl:
            model = load(path)
            rng = np.random.default_rng(0)
            x = (model.test_inputs[model.inputs[0].name].array if model.test_inputs
                 else rng.integers(-128, 128, size=model.inputs[0].shape).astype(np.int8))
            rows += _emulator_rows(f"{path.name} {list(model.inputs[0].shape)}", model, x, args.threads, args.repeat)
    else:
        import _yolo

        from host.model.quantize import quantize_model

        with tempfile.TemporaryDirectory() as tmp:
            calib = _yolo.write_calibration_images(Path(tmp) / "calib")
            for size in args.sizes:
                onnx_path = _yolo.export_random_yolo11n(Path(tmp) / f"yolo11n_{size}.onnx", size)
                q = quantize_model(str(onnx_path), target="esp32p4", imgsz=size, preset="int8", calib_dir=calib)
                model = load(q.espdl_path)
                x = model.test_inputs["images"].array
                label = f"YOLO11n {size} (P4 int8)"
                rows += _emulator_rows(label, model, x, args.threads, args.repeat)
                rows.append(_ppq_row(label, q.graph_path, model, x, args.repeat))
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nmedian of {args.repeat} runs per image; {os.cpu_count()} CPUs, load average {load_avg:.2f}")
    width = max(len(r[0]) for r in rows)
    print(f"{'model':{width}s}  {'engine':42s}  wall s  CPU s")
    for label, engine, wall, cpu in rows:
        print(f"{label:{width}s}  {engine:42s}  {wall:6.3f}  {cpu:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
