"""Wall time of a warm HIL run on the simulated DUT, where it goes, and what pipelined streaming gains.

Benchmark, not a timed test: it prints figures. For the fixture images at --imgsz (320) and the target
(esp32p4), with a warm model cache:

1. `--sim-link none` (the pty as fast as it goes, no modelled compute wait): the fixture images as a
   dataset run (host/runs/dataset.py run_dataset: reference, detect, comparison, journal), once one image
   at a time and once streamed (queued detects, protocol 2). Per image: the wall time against
   max(sim compute, reference compute) - the goal is <= 1.2x - with the breakdown: host reference (PPQ
   executor + ESP-DL pre/post on the host), sim compute (the int8 emulator and pre/post the sim runs,
   re-measured in-process on the same inputs), link (the rest of each one-at-a-time detect request:
   upload, framing, pty) and harness overhead (comparison, image loading, journal).
2. `--sim-link usj` and `uart2m` (paced link, the sim waits the modelled chip time): the device side of a
   board-shaped run - the images preloaded, every one detected, one at a time and streamed - against the sum
   of the modelled device compute the records report (goal <= 1.1x for usj), with the link's share. The
   host reference (~100x slower here than the modelled P4) is left out so the device pipeline is measured;
   --modelled-with-reference adds the full dataset run on the modelled links too.

    PYTHONHASHSEED=0 YOLO_OFFLINE=1 python tools/bench_sim_run.py [--model PATH] [--imgsz 320]
        [--target esp32p4] [--links none,usj,uart2m] [--modelled-with-reference]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _dataset(images: list[Path]):
    from host.dataset import GroundTruth, Item, LabelledSet

    # The comparison and the journal are what is timed; mAP needs some ground truth, one dummy box each.
    items = [Item(p, (GroundTruth(0, 1.0, 1.0, 10.0, 10.0),)) for p in images]
    return LabelledSet(images[0].parent, "yolo", items)


def dataset_run(dut, images: list[Path], model, target: str, streaming: bool) -> dict:
    """The fixture images as a dataset run on `dut`; wall time and the reference's own time."""
    from host.chip.detection import DEFAULT_THRESHOLDS
    from host.reference.reference import reference
    from host.report.results import ResultsWriter
    from host.runs.dataset import RECORD, RunSetup, run_dataset, summarize

    ref_seconds = [0.0]
    lock = threading.Lock()

    def timed_reference(rgb):
        t0 = time.perf_counter()
        result = reference(rgb, model, target)
        with lock:
            ref_seconds[0] += time.perf_counter() - t0
        return result

    dut.streaming = streaming
    dataset = _dataset(images)
    with tempfile.TemporaryDirectory() as tmp:
        writer = ResultsWriter(Path(tmp), {"bench": "sim-run"})
        bytes_before, link_before = dut.client.stats.bytes_out, dut.client.stats.link_seconds
        t0 = time.perf_counter()
        run = run_dataset(dataset, dut, RunSetup(model.sha256, "sim", target, DEFAULT_THRESHOLDS),
                          timed_reference, writer)
        wall = time.perf_counter() - t0
        records = [r for r in writer.records if r["kind"] == RECORD]
    t0 = time.perf_counter()  # the run's closing summary (mAP per engine), re-timed on its records
    summarize(dataset, {r["test"]: r for r in records}, [])
    summary = time.perf_counter() - t0
    return {"wall": wall, "reference": ref_seconds[0], "path": run.detect_path,
            "agree": sum(r["equal"] for r in records), "n": len(records), "summary": summary,
            "request_seconds": dut.client.stats.link_seconds - link_before,
            "bytes": dut.client.stats.bytes_out - bytes_before}


def ideal_two_buffer_schedule(uploads: list[float], computes: list[float]) -> float:
    """When the last image would be computed with two image buffers and no host or answer latency: upload k+1
    starts once upload k has ended and image k has started computing (a buffer is free then); image k
    computes once its upload has ended and image k-1 has been computed."""
    next_upload_start = compute_end = 0.0
    for upload, compute in zip(uploads, computes):
        upload_end = next_upload_start + upload
        compute_start = max(upload_end, compute_end)
        compute_end = compute_start + compute
        next_upload_start = max(upload_end, compute_start)
    return compute_end


def device_run(dut, rgbs: list, streaming: bool) -> dict:
    """Every preloaded image through the DUT only; wall time and the modelled device compute of the records."""
    dut.streaming = streaming
    t0 = time.perf_counter()
    results = list(dut.detect_stream(rgbs))
    wall = time.perf_counter() - t0
    computes = [sum(r.stage_us.values()) / 1e6 for r in results]
    uploads = [r.upload_us / 1e6 for r in results]
    return {"wall": wall, "compute": sum(computes), "upload": sum(uploads), "path": dut.stream_path,
            "n": len(results), "ideal": ideal_two_buffer_schedule(uploads, computes),
            "serial": sum(computes) + sum(uploads)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--target", default="esp32p4")
    p.add_argument("--links", default="none,usj,uart2m", help="comma-separated --sim-link modes to measure")
    p.add_argument("--modelled-with-reference", action="store_true",
                   help="also run the full dataset run (with the host reference) on the modelled links")
    args = p.parse_args()

    from host.chip.pipeline import DetectPipeline
    from host.chip.preprocess import load_image
    from host.dut.sim.backend import open_sim
    from host.dut.sim.link import LINKS
    from host.espdl import load, write_pdl3
    from host.espdl.engine import EmulatorEngine
    from host.hil.options import DEFAULT_IMAGES, list_images
    from host.model import quantize_model
    from host.reference.reference import reference

    links = [name.strip() for name in args.links.split(",") if name.strip()]
    model = quantize_model(args.model, target=args.target, imgsz=args.imgsz)
    pack = Path(tempfile.gettempdir()) / "bench_sim_pack.bin"
    pack.write_bytes(write_pdl3({"model": model.espdl_path.read_bytes()}))
    images = list_images(DEFAULT_IMAGES)
    rgbs = [load_image(path) for path in images]
    n = len(images)
    image_bytes = sum(rgb.nbytes for rgb in rgbs)
    reference(rgbs[0], model, args.target)  # warm the reference's executor
    print(f"{n} fixture images at {args.imgsz} on the simulated {args.target}, {image_bytes} image bytes")

    if "none" in links:
        dut = open_sim(pack, args.target, timeout_s=300.0, link="none")
        try:
            dut.detect(rgbs[0])  # warm the sim (its first request loads lazily)
            single = dataset_run(dut, images, model, args.target, streaming=False)
            stream = dataset_run(dut, images, model, args.target, streaming=True)
        finally:
            dut.close()
        sim_pipeline = DetectPipeline(EmulatorEngine(load(model.espdl_path), args.target), args.target)
        s0 = time.perf_counter()
        for rgb in rgbs:  # what the sim computed for each request, re-measured here
            sim_pipeline.detect(rgb)
        sim = time.perf_counter() - s0
        ref = min(single["reference"], stream["reference"])
        bound = max(sim, ref) / n
        print("\n--sim-link none: dataset run (reference, detect, comparison, journal, summary), per image")
        print(f"  reference compute {ref / n:7.3f} s   sim compute {sim / n:7.3f} s   "
              f"max {bound:7.3f} s   (goal: wall <= 1.2x max)")
        for name, run in (("one at a time", single), ("streamed", stream)):
            print(f"  {name:<14} wall {run['wall'] / n:7.3f} s/image = {run['wall'] / n / bound:5.2f}x max   "
                  f"main thread in DUT requests {run['request_seconds'] / n:6.3f} s/image   "
                  f"[path {run['path']}, {run['agree']}/{run['n']} agree]")
        link = max(0.0, single["request_seconds"] - sim)
        print("  breakdown per image (the reference runs on a worker thread and the sim in its own process, so the "
              "parts overlap and do not add up to the wall):")
        for name, value in (("host reference (PPQ executor + ESP-DL pre/post)", ref),
                            ("sim compute (emulator + pre/post)", sim),
                            ("link (one-at-a-time request minus sim compute)", link),
                            ("closing summary (mAP per engine)", single["summary"]),
                            ("main thread outside DUT requests, one at a time",
                             single["wall"] - single["request_seconds"]),
                            ("main thread outside DUT requests, streamed",
                             stream["wall"] - stream["request_seconds"])):
            print(f"    {name:<50}{value / n:8.3f} s")
        print("    (outside DUT requests: waiting for the reference, comparison, journal, image loading, summary)")
        print(f"  upload efficiency: {image_bytes} image bytes / {single['bytes']} bytes written = "
              f"{image_bytes / single['bytes']:.3f}")

    for name in (link for link in links if link != "none"):
        model_link = LINKS[name]
        dut = open_sim(pack, args.target, timeout_s=300.0, link=name)
        try:
            dut.detect(rgbs[0])
            single = device_run(dut, rgbs, streaming=False)
            stream = device_run(dut, rgbs, streaming=True)
            full = {}
            if args.modelled_with_reference:
                full = {s: dataset_run(dut, images, model, args.target, streaming=s) for s in (False, True)}
        finally:
            dut.close()
        link_s = image_bytes / model_link.bytes_per_s
        print(f"\n--sim-link {name} ({model_link.bytes_per_s / 1e6:.2f} MB/s each way, modelled {args.target} "
              f"compute): the device side of the run, {n} images preloaded")
        print(f"  modelled device compute {stream['compute']:7.2f} s ({stream['compute'] / n:.3f} s/image)   "
              f"image bytes on the link alone {link_s:6.2f} s   device upload_us sum {stream['upload']:6.2f} s")
        for label, run in (("one at a time", single), ("streamed", stream)):
            print(f"  {label:<14} wall {run['wall']:7.2f} s = {run['wall'] / run['compute']:5.2f}x the modelled "
                  f"compute (goal <= 1.1x)   [path {run['path']}]")
        print(f"  ideal two-buffer pipeline on these uploads and computes: {stream['ideal']:.2f} s = "
              f"{stream['ideal'] / stream['compute']:.2f}x (streamed measured / ideal = "
              f"{stream['wall'] / stream['ideal']:.2f}); one at a time, upload + compute = {single['serial']:.2f} s")
        for streaming, run in full.items():
            print(f"  dataset run with the host reference, {'streamed' if streaming else 'one at a time':<13}: wall "
                  f"{run['wall']:7.2f} s = {run['wall'] / stream['compute']:5.2f}x the modelled compute "
                  f"(reference {run['reference']:.2f} s, {run['agree']}/{run['n']} agree) [path {run['path']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
