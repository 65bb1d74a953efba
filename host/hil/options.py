"""The HIL suite's options: one table for pytest, one typed record for the fixtures, and the checks that
refuse a bad option before anything starts (one line naming the problem and the fix, exit 4).

Everything that can be judged from the options alone is judged here, at configure time: the model path
exists and is a kind the harness reads, preset, input size, thresholds and tolerances in range, the
image and calibration folders hold images, the report folder is writable, the sim fault plan parses, the
--qat-* settings suit the preset and their training folder holds labelled images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from host.chip.detection import DEFAULT_THRESHOLDS as D
from host.chip.detection import Thresholds
from host.chip.targets import DEFAULT_TARGET
from host.dut.backend import DutOptions
from host.dut.select import CHOICES
from host.errors import HarnessError, require_writable_folder
from host.model.presets import QAT_BATCH, QAT_EPOCHS, QAT_LR, Preset

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IMAGES = ROOT / "fixtures" / "images"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

#: (flag, argparse keywords): the harness's own options; --target and --port come from pytest-embedded.
OPTIONS: list[tuple[str, dict[str, Any]]] = [
    # no argparse `choices`: pytest would print its usage block, not one line; _check_dut names the choices
    ("--dut", dict(default="auto", help=f"device under test, one of {', '.join(CHOICES)}: a board if found "
                                        "(auto; an error on CI without one), or the simulated DUT")),
    ("--require-board", dict(action="store_true", help="fail when no board is found (release gating)")),
    ("--hardware-map", dict(default=None, help="YAML map of the boards (and simulated boards) this runner may use; "
                                               "each pytest-xdist worker locks one (see host/dut/hardware_map.py)")),
    ("--shard", dict(default=None, help="I/N: run only shard I (0-based) of N of the images and the dataset, "
                                        "split deterministically (one CI runner of N)")),
    ("--model", dict(default=None, help="model .pt/.yaml/.onnx/.espdl (default: the bundled fixture model)")),
    ("--preset", dict(default="int8", help="quantization preset: int8, mixed, tutorial, qat")),
    ("--imgsz", dict(type=int, default=320, help="model input size (a multiple of 32)")),
    ("--calib", dict(default=None, help="calibration image folder (default fixtures/calib)")),
    ("--qat-epochs", dict(type=int, default=None, help=f"training epochs of --preset qat (default {QAT_EPOCHS})")),
    ("--qat-lr", dict(type=float, default=None, help=f"SGD learning rate of --preset qat (default {QAT_LR:g})")),
    ("--qat-batch", dict(type=int, default=None, help=f"images per training step of --preset qat "
                                                      f"(default {QAT_BATCH})")),
    ("--qat-data", dict(default=None, help="labelled image folder --preset qat trains on: YOLO layout or .txt labels "
                                           "beside the images (default: a synthetic set generated once, cached)")),
    ("--images", dict(default=str(DEFAULT_IMAGES), help="folder of test images for the detection tests")),
    ("--score-thr", dict(type=float, default=D.score_thr, help="postprocess score threshold, in (0, 1)")),
    ("--nms-thr", dict(type=float, default=D.nms_thr, help="NMS IoU threshold, in (0, 1]")),
    ("--top-k", dict(type=int, default=D.top_k, help="boxes kept after NMS, 1..1000")),
    ("--iou-tol", dict(type=float, default=None, help="match boxes by IoU >= this instead of exactly")),
    ("--score-tol", dict(type=float, default=0.0, help="allowed score difference of matched boxes")),
    ("--unmatched-tol", dict(type=int, default=0, help="boxes allowed unmatched near the score threshold")),
    ("--hil-dump", dict(default="on-mismatch", choices=["on-mismatch", "always"],
                        help="when to fetch the device's tensors for the stage-by-stage diff")),
    ("--bench-runs", dict(type=int, default=20, help="timed runs per latency window")),
    ("--bench-windows", dict(type=int, default=5, help="latency windows (bench calls)")),
    ("--bench-warmup", dict(type=int, default=2, help="warm-up runs before the first window")),
    ("--latency-baselines", dict(default=str(ROOT / "fixtures" / "baselines"),
                                 help="folder of stored latency baselines")),
    ("--latency-threshold", dict(type=float, default=0.05, help="relative slowdown that fails the gate")),
    ("--published-gate", dict(action="store_true", help="fail when a board is slower than Espressif's figures")),
    ("--report-dir", dict(default="reports", help="folder for results.jsonl/json and report.html")),
    ("--dataset", dict(default=None, help="labelled set for the accuracy run: a folder of images with YOLO label "
                                          "files, or a COCO .json (enables tests/hil/test_accuracy.py)")),
    ("--resume", dict(action="store_true", help="continue an interrupted run: keep results.jsonl and skip the "
                                                "images it already holds for the same setup")),
    ("--max-map-drop", dict(type=float, default=None, help="accuracy gate: the device's mAP50-95 may be at most "
                                                           "this much below the float model's")),
    ("--accuracy-baselines", dict(default=str(ROOT / "fixtures" / "accuracy_baselines"),
                                  help="folder of stored accuracy baselines")),
    ("--accuracy-tolerance", dict(type=float, default=0.0, help="allowed mAP50-95 shortfall against the baseline")),
    ("--sim-faults", dict(default="", help="fault plan for the simulated DUT (harness self-tests)")),
    ("--sim-seed", dict(type=int, default=0, help="seed of the simulated DUT's latency noise")),
    ("--sim-link", dict(default="none", help="link and device-time model of the simulated DUT: none (the pty as "
                                             "fast as it goes), uart2m (2 Mbaud 8N1), usj (USB-Serial-JTAG); "
                                             "the modelled ones also take the modelled chip compute time")),
    ("--firmware-config", dict(default="uart", help="firmware config (sdkconfig.ci.<name>) to build and flash")),
    ("--dut-timeout", dict(type=float, default=120.0, help="seconds to wait for any one device answer")),
]


@dataclass(frozen=True)
class HilOptions:
    """The options of one HIL session, typed (what `config.getoption` returns, read once)."""

    target: str
    dut: str
    require_board: bool
    hardware_map: Path | None
    shard: tuple[int, int]
    port: str | None
    model: str | None
    preset: str
    imgsz: int
    calib: str | None
    images: Path
    thresholds: Thresholds
    iou_tol: float | None
    score_tol: float
    unmatched_tol: int
    hil_dump: str
    bench_runs: int
    bench_windows: int
    bench_warmup: int
    latency_baselines: Path
    latency_threshold: float
    published_gate: bool
    report_dir: Path
    dataset: Path | None
    resume: bool
    max_map_drop: float | None
    accuracy_baselines: Path
    accuracy_tolerance: float
    sim_faults: str
    sim_seed: int
    firmware_config: str
    dut_timeout: float
    sim_link: str = "none"
    qat_epochs: int | None = None
    qat_lr: float | None = None
    qat_batch: int | None = None
    qat_data: Path | None = None

    @classmethod
    def from_getoption(cls, getoption: Callable[..., Any]) -> "HilOptions":
        target = (getoption("target", default=None) or DEFAULT_TARGET).split("|")[0]
        return cls(
            target=target, dut=getoption("dut"), require_board=bool(getoption("require_board")),
            hardware_map=Path(getoption("hardware_map")) if getoption("hardware_map") else None,
            shard=parse_shard(getoption("shard")),
            port=getoption("port", default=None), model=getoption("model"), preset=getoption("preset"),
            imgsz=getoption("imgsz"), calib=getoption("calib"), images=Path(getoption("images")),
            thresholds=Thresholds(getoption("score_thr"), getoption("nms_thr"), getoption("top_k")),
            iou_tol=getoption("iou_tol"), score_tol=getoption("score_tol"), unmatched_tol=getoption("unmatched_tol"),
            hil_dump=getoption("hil_dump"), bench_runs=getoption("bench_runs"),
            bench_windows=getoption("bench_windows"), bench_warmup=getoption("bench_warmup"),
            latency_baselines=Path(getoption("latency_baselines")),
            latency_threshold=getoption("latency_threshold"), published_gate=bool(getoption("published_gate")),
            report_dir=Path(getoption("report_dir")),
            dataset=Path(getoption("dataset")) if getoption("dataset") else None, resume=bool(getoption("resume")),
            max_map_drop=getoption("max_map_drop"), accuracy_baselines=Path(getoption("accuracy_baselines")),
            accuracy_tolerance=getoption("accuracy_tolerance"), sim_faults=getoption("sim_faults") or "",
            sim_seed=getoption("sim_seed"), firmware_config=getoption("firmware_config"),
            dut_timeout=getoption("dut_timeout"), sim_link=getoption("sim_link", default=None) or "none",
            qat_epochs=getoption("qat_epochs", default=None), qat_lr=getoption("qat_lr", default=None),
            qat_batch=getoption("qat_batch", default=None),
            qat_data=Path(getoption("qat_data")) if getoption("qat_data", default=None) else None,
        )

    def quantization_preset(self) -> Preset:
        """The preset the session quantizes with: --preset with the --qat-* settings applied."""
        from host.model.presets import get_preset, qat_overrides

        return get_preset(self.preset, **qat_overrides(self))

    def dut_options(self) -> DutOptions:
        return DutOptions(target=self.target, port=self.port, timeout_s=self.dut_timeout,
                          firmware_config=self.firmware_config,
                          flash_baud=int(os.environ.get("ESPBAUD", "921600")),
                          sim_faults=self.sim_faults, sim_seed=self.sim_seed, sim_link=self.sim_link)


def parse_shard(text: str | None) -> tuple[int, int]:
    """"I/N" -> (I, N); None -> (0, 1). A HarnessError names the fix for anything else."""
    if not text:
        return (0, 1)
    index, sep, count = str(text).partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit() or not 0 <= int(index) < int(count):
        raise HarnessError(f"--shard {text!r} is not I/N with 0 <= I < N; write e.g. --shard 0/4 for the first of 4")
    return (int(index), int(count))


def list_images(folder: Path) -> list[Path]:
    """The test images of a folder, sorted; a HarnessError when it is missing or holds none."""
    if not folder.is_dir():
        raise HarnessError(f"--images {folder} is not a folder; point it at a folder of PNG/JPEG test images")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise HarnessError(f"--images {folder} holds no PNG/JPEG images ({', '.join(IMAGE_SUFFIXES)}); "
                           "add some or point --images elsewhere")
    return images


def _in_range(name: str, value: float | int | None, low: float, high: float, hint: str,
              low_open: bool = False) -> None:
    ok = value is not None and (low < value if low_open else low <= value) and value <= high
    if not ok:
        raise HarnessError(f"{name} {value} is out of range: {hint}")


def _check_numbers(o: HilOptions) -> None:
    t = o.thresholds
    _in_range("--score-thr", t.score_thr, 0.0, 0.999999, "give a probability in (0, 1), e.g. 0.25", low_open=True)
    _in_range("--nms-thr", t.nms_thr, 0.0, 1.0, "give an IoU in (0, 1], e.g. 0.7", low_open=True)
    _in_range("--top-k", t.top_k, 1, 1000, "give 1..1000 boxes (the firmware's limit), e.g. 10")
    if o.iou_tol is not None:
        _in_range("--iou-tol", o.iou_tol, 0.0, 1.0, "give an IoU in (0, 1], e.g. 0.9", low_open=True)
    _in_range("--score-tol", o.score_tol, 0.0, 1.0, "give a score difference in [0, 1], e.g. 0.01")
    _in_range("--unmatched-tol", o.unmatched_tol, 0, 1000, "give a count >= 0")
    _in_range("--bench-runs", o.bench_runs, 1, 100000, "give at least 1 timed run per window")
    _in_range("--bench-windows", o.bench_windows, 1, 1000, "give at least 1 window")
    _in_range("--bench-warmup", o.bench_warmup, 0, 1000, "give 0 or more warm-up runs")
    _in_range("--latency-threshold", o.latency_threshold, 0.0, 10.0, "give a relative slowdown, e.g. 0.05",
              low_open=True)
    if o.max_map_drop is not None:
        _in_range("--max-map-drop", o.max_map_drop, 0.0, 1.0, "give an mAP difference in [0, 1], e.g. 0.02")
    _in_range("--accuracy-tolerance", o.accuracy_tolerance, 0.0, 1.0, "give an mAP difference in [0, 1]")
    _in_range("--dut-timeout", o.dut_timeout, 0.0, 86400.0, "give seconds > 0, e.g. 120", low_open=True)
    if o.imgsz < 32 or o.imgsz > 2048 or o.imgsz % 32:
        raise HarnessError(f"--imgsz {o.imgsz} is not a multiple of 32 in 32..2048; use e.g. 320 or 640")


def _check_model(o: HilOptions) -> None:
    from host.model.presets import PRESETS
    from host.model.source import check_readable, resolve_model

    if o.preset not in PRESETS:
        raise HarnessError(f"--preset {o.preset!r} is unknown; choose one of {', '.join(PRESETS)}")
    check_readable(resolve_model(o.model, download=False), imgsz=o.imgsz, target=o.target)


def _check_qat(o: HilOptions) -> None:
    """The --qat-* options, after _check_model knows the preset (the same check as the commands')."""
    from host.model.presets import check_qat_overrides, qat_overrides

    check_qat_overrides(o.preset, qat_overrides(o))


def _check_folders(o: HilOptions) -> None:
    from host.model.calib import find_calibration_set

    list_images(o.images)
    if o.dataset is not None:
        from host.dataset import load_dataset

        load_dataset(o.dataset)
    if o.calib is not None:
        find_calibration_set(o.calib)
    require_writable_folder(o.report_dir, "--report-dir")


def _check_dut(o: HilOptions) -> None:
    from host.dut.select import check_requested

    check_requested(o.dut)
    if o.hardware_map is not None:
        from host.dut.hardware_map import load_map, matching

        entries = load_map(o.hardware_map)
        if not matching(entries, o.target, o.firmware_config):
            raise HarnessError(f"--hardware-map {o.hardware_map} has no entry for {o.target} (firmware config "
                               f"{o.firmware_config}); add one or pass another --target")


def _check_sim(o: HilOptions) -> None:
    from host.dut.sim.faults import FaultPlan
    from host.dut.sim.link import link_model

    try:
        FaultPlan.parse(o.sim_faults).stage_slowdown()
    except HarnessError as exc:
        raise HarnessError(f"--sim-faults {o.sim_faults!r}: {exc}") from None
    link_model(o.sim_link)


#: Every configure-time check, in the order a user would fix them.
CHECKS: tuple[Callable[[HilOptions], None], ...] = (_check_dut, _check_numbers, _check_folders, _check_sim,
                                                    _check_model, _check_qat)


def validate(options: HilOptions) -> None:
    """Raise a HarnessError naming the first bad option and its fix, in one line (pytest prints it as
    `ERROR: yolo11-hil: ...`; a message from deeper down that spans lines is joined into one)."""
    for check in CHECKS:
        try:
            check(options)
        except HarnessError as exc:
            text = str(exc)
            if "\n" not in text:
                raise
            raise HarnessError(" ".join(part.strip() for part in text.splitlines() if part.strip())) from None
