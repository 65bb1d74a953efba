"""The pytest plugin behind `pytest --target esp32p4`: options, target selection, session fixtures, reports.

Session order: choose the DUT kind (a board if one is found, else the simulated DUT - said in the
header and the report), quantize the model (cached), build the model-partition image, open and
boot the DUT once for the session, and compute host references per image on demand. Tests in
tests/hil/ use the `hil` fixture and are written once for every backend.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from host.errors import HarnessError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IMAGES = ROOT / "fixtures" / "images"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

#: (flag, argparse keywords): the harness's own options; --target and --port come from pytest-embedded.
OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--dut", dict(default="auto", choices=["auto", "board", "qemu", "espemu", "sim"],
                   help="device under test: a board if found (auto), or the simulated DUT")),
    ("--require-board", dict(action="store_true", help="fail when no board is found (release gating)")),
    ("--model", dict(default=None, help="model .pt/.onnx/.espdl (default: the bundled fixture model)")),
    ("--preset", dict(default="int8", help="quantization preset: int8, mixed, tutorial")),
    ("--imgsz", dict(type=int, default=320, help="model input size")),
    ("--calib", dict(default=None, help="calibration image folder (default fixtures/calib)")),
    ("--images", dict(default=str(DEFAULT_IMAGES), help="folder of test images for the detection tests")),
    ("--score-thr", dict(type=float, default=0.25)),
    ("--nms-thr", dict(type=float, default=0.7)),
    ("--top-k", dict(type=int, default=10)),
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
    ("--sim-faults", dict(default="", help="fault plan for the simulated DUT (harness self-tests)")),
    ("--sim-seed", dict(type=int, default=0, help="seed of the simulated DUT's latency noise")),
    ("--firmware-config", dict(default="uart", help="firmware config (sdkconfig.ci.<name>) to build and flash")),
    ("--dut-timeout", dict(type=float, default=120.0, help="seconds to wait for any one device answer")),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("yolo11-hil", "YOLO11n hardware-in-the-loop harness")
    for flag, kwargs in OPTIONS:
        group.addoption(flag, **kwargs)


def _target(config: pytest.Config) -> str:
    target = config.getoption("target", default=None) or "esp32p4"
    return target.split("|")[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep tests whose `target` markers include --target (tests without the marker always run)."""
    target = _target(config)
    selected, deselected = [], []
    for item in items:
        marks = [m for m in item.iter_markers("target")]
        wanted = {t for m in marks for t in m.args}
        (selected if not marks or target in wanted else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def test_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise HarnessError(f"--images {folder} is not a folder; point it at a folder of PNG/JPEG test images")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise HarnessError(f"--images {folder} holds no PNG/JPEG images")
    return images


test_images.__test__ = False  # a helper, not a test


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_image" in metafunc.fixturenames:
        images = test_images(metafunc.config.getoption("images"))
        metafunc.parametrize("hil_image", images, ids=[p.stem for p in images])


def harness_revision() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return (sha or "unknown") + ("-dirty" if dirty else "")


@dataclass
class HilSession:
    """What every HIL test needs: options, the model artifact, the DUT, references and the report."""

    config: pytest.Config
    target: str
    choice: Any
    model: Any = None
    pack_path: Path | None = None
    dut: Any = None
    results: Any = None
    provenance: dict[str, Any] = field(default_factory=dict)
    _references: dict[str, Any] = field(default_factory=dict)

    def opt(self, name: str) -> Any:
        return self.config.getoption(name)

    def tolerance(self):
        from host.verdict import Tolerance

        return Tolerance(self.opt("iou_tol"), self.opt("score_tol"), self.opt("unmatched_tol"))

    def thresholds(self) -> dict[str, Any]:
        return {"score_thr": self.opt("score_thr"), "nms_thr": self.opt("nms_thr"), "top_k": self.opt("top_k")}

    def reference(self, image_path: Path):
        """The host reference for one image (computed once per session)."""
        key = str(image_path)
        if key not in self._references:
            from host.chip.preprocess import load_image
            from host.reference.reference import reference

            self._references[key] = reference(load_image(image_path), self.model, self.target, **self.thresholds())
        return self._references[key]


_SESSION: HilSession | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Choose the DUT kind once; with --require-board, no board stops the session before it starts."""
    from host.dut.backends import choose

    try:
        config._hil_choice = choose(config.getoption("dut"), _target(config),  # type: ignore[attr-defined]
                                    config.getoption("port", default=None), config.getoption("require_board"))
    except HarnessError as exc:
        if config.getoption("require_board") or config.getoption("dut") != "auto":
            raise pytest.UsageError(f"yolo11-hil: {exc}") from None
        config._hil_choice = None  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> list[str]:
    choice = getattr(config, "_hil_choice", None)
    if choice is None:
        return ["yolo11-hil: no DUT could be chosen (see the error of the first HIL test)"]
    line = f"yolo11-hil: target {_target(config)}, DUT {choice.kind.upper()} ({choice.reason})"
    if choice.kind == "sim":
        line += " - results are from the SIMULATED DUT, latencies are simulated"
    return [line]


@pytest.fixture(scope="session")
def hil(request: pytest.FixtureRequest):
    """The session's HilSession: model quantized, DUT opened and booted once."""
    global _SESSION
    from host.dut.backends import choose, open_sim
    from host.espdl import write_pdl3
    from host.model import quantize_model
    from host.report.results import ResultsWriter

    config = request.config
    target = _target(config)
    choice = getattr(config, "_hil_choice", None) or choose(
        config.getoption("dut"), target, config.getoption("port", default=None), config.getoption("require_board"))
    session = HilSession(config, target, choice)
    session.model = quantize_model(config.getoption("model"), target=target, imgsz=config.getoption("imgsz"),
                                   preset=config.getoption("preset"), calib_dir=config.getoption("calib"))
    from host.espdl.check import check_file, errors

    findings = check_file(session.model.espdl_path, target, session.model.espdl_version)
    if errors(findings):
        raise HarnessError("the model would not run right on the firmware's esp-dl "
                           f"{session.model.espdl_version}; nothing was flashed:\n"
                           + "\n".join(str(f) for f in errors(findings)))
    report_dir = Path(config.getoption("report_dir"))
    report_dir.mkdir(parents=True, exist_ok=True)
    session.pack_path = report_dir / "model_partition.bin"
    session.pack_path.write_bytes(write_pdl3({"model": session.model.espdl_path.read_bytes()}))
    if choice.kind == "sim":
        session.dut = open_sim(session.pack_path, target, faults=config.getoption("sim_faults"),
                               seed=config.getoption("sim_seed"), timeout_s=config.getoption("dut_timeout"))
    else:
        from host.dut.board import open_device

        session.dut = open_device(choice, target, session.pack_path, config)
    info = session.dut.info()
    session.provenance = {
        "dut_kind": choice.kind, "dut_reason": choice.reason, "port": session.dut.port, "target": target,
        "chip": info.chip, "chip_revision": info.revision, "latency_label": session.dut.latency_label,
        "harness_sha": harness_revision(), "firmware_sha256": info.raw.get("app_sha256"),
        "idf_version": info.raw.get("idf"), "espdl_version": info.raw.get("espdl"),
        "model": session.model.source.name, "model_source_sha256": session.model.source.sha256,
        "model_sha256": session.model.sha256, "device_model_sha256": info.model_sha256,
        "preset": session.model.preset, "imgsz": session.model.imgsz,
        "sdkconfig_sha256": info.raw.get("sdkconfig_sha256", "n/a (simulated DUT)" if choice.kind == "sim" else None),
        "tolerance": session.tolerance().describe(),
        "firmware_config": "sim" if choice.kind == "sim" else info.raw.get("config", "unknown"),
        "espdl_check_warnings": [str(f) for f in findings],
    }
    if choice.kind == "sim":
        session.provenance["sim_emulator_notes"] = emulator_notes(session.model, target)
    session.results = ResultsWriter(report_dir, session.provenance)
    _SESSION = session
    yield session
    session.dut.close()


@pytest.fixture
def hil_record(hil: HilSession, record_property, request: pytest.FixtureRequest):
    """Record the session provenance as JUnit properties of this test, and return the results writer."""
    for key in ("dut_kind", "chip_revision", "harness_sha", "firmware_sha256", "model_sha256",
                "sdkconfig_sha256", "idf_version", "espdl_version"):
        record_property(key, hil.provenance.get(key))
    return hil.results


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SESSION is None or _SESSION.results is None:
        return
    from host.report.html import write_report

    _SESSION.results.finish()
    write_report(_SESSION.results.dir, _SESSION.provenance, _SESSION.results.records)


def emulator_notes(model, target: str) -> list[str]:
    """What the sim DUT's emulator cannot prove about this model on the embedded test input (e.g. ESP32-S3
    convs whose 20-bit lanes could saturate on the chip): the sim's fidelity limits, for the report."""
    from host.espdl import load, selftest

    espdl = load(model.espdl_path)
    if not espdl.test_inputs:
        return ["no embedded test values: the emulator's fidelity notes were not computed"]
    return [f"{node}: {note}" for node, note in selftest(espdl, target, model.espdl_version).notes.items()]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _SESSION is None:
        return
    p = _SESSION.provenance
    terminalreporter.write_sep("-", "yolo11-hil")
    terminalreporter.write_line(f"DUT: {p['dut_kind']} ({p['dut_reason']}); latencies {p['latency_label']}")
    terminalreporter.write_line(f"model {p['model']} sha256 {p['model_sha256'][:16]}..., {p['preset']} @ {p['imgsz']}")
    notes = p.get("sim_emulator_notes") or []
    if notes:
        terminalreporter.write_line(f"sim DUT fidelity: {len(notes)} emulator note(s), e.g. {notes[0]}")
    terminalreporter.write_line(f"reports: {_SESSION.results.dir}/results.json, report.html")
