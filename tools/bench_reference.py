"""Benchmark the host reference per image at 320 and 640 next to the bare ESP-PPQ executor call.

Goal: preprocess + postprocess cost under 30 % of the executor call, so the reference's own code
never dominates a test run. Prints one table row per input size.

    python tools/bench_reference.py                       # the bundled fixture model
    python tools/bench_reference.py --model yolo11n.pt --sizes 320 640 --repeat 10

The model goes through host.model.quantize_model (cached), so the first run also quantizes.
Postprocess cost grows with the number of cells above the threshold, printed as "cand.".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(samples)


def _images(folder: Path | None) -> list:
    from host.chip.preprocess import load_image

    if folder is not None:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if not files:
            raise SystemExit(f"no PNG/JPEG images in {folder}")
        return [load_image(p) for p in files[:4]]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model for host.model.quantize_model (default: fixture)")
    parser.add_argument("--target", default="esp32p4")
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    parser.add_argument("--images", type=Path, default=Path(__file__).resolve().parents[1] / "fixtures" / "images")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--score-thr", type=float, default=0.25)
    args = parser.parse_args(argv)

    import torch

    from host.model import quantize_model
    from host.chip.postprocess import postprocess
    from host.chip.preprocess import preprocess
    from host.reference.reference import simulator_for

    torch.set_num_threads(2)
    images = _images(args.images if args.images.is_dir() else None)
    rows = []
    for size in args.sizes:
        model = quantize_model(args.model, target=args.target, imgsz=size)
        sim = simulator_for(model.graph_path)
        pre = post = bare = run = 0.0
        cands = 0
        for img in images:
            tensor, geom = preprocess(img, size, sim.input_exponent, args.target)
            x = torch.from_numpy(sim.input_float(tensor))
            raw = sim.run(tensor)
            res = postprocess(raw.tensors, raw.exponents, geom, args.target, score_thr=args.score_thr)
            cands += len(res.candidates)
            pre += _median_ms(lambda: preprocess(img, size, sim.input_exponent, args.target), args.repeat)

            def executor_call():
                with torch.no_grad():
                    sim.executor.forward(inputs=x, output_names=list(sim.output_names))

            bare += _median_ms(executor_call, args.repeat)
            run += _median_ms(lambda: sim.run(tensor), args.repeat)
            post += _median_ms(
                lambda: postprocess(raw.tensors, raw.exponents, geom, args.target, score_thr=args.score_thr),
                args.repeat,
            )
        n = len(images)
        rows.append((size, pre / n, post / n, bare / n, run / n, cands / n))

    print(f"host reference per image, median of {args.repeat} runs, {len(images)} image(s), torch threads 2")
    print(f"{'imgsz':>5} | {'pre ms':>8} | {'post ms':>8} | {'executor ms':>11} | {'sim.run ms':>11} | "
          f"{'(pre+post)/exec':>15} | {'cand.':>7}")
    print("(executor = bare TorchExecutor.forward; sim.run = executor + int conversion to NHWC)")
    for size, pre, post, bare, run, cands in rows:
        print(f"{size:>5} | {pre:8.2f} | {post:8.2f} | {bare:11.1f} | {run:11.1f} | "
              f"{100.0 * (pre + post) / bare:14.1f}% | {cands:7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
