"""The pytest plugin behind `pytest --target esp32p4`: options, DUT choice, session fixtures, reports.

Order of a session: options are checked and the DUT kind is chosen at configure time (a bad option or a
missing board ends the run there, in one line); then, once per session and only when a HIL test needs
it, the model artifact is quantized (cached) and checked, the flash pack written, the DUT prepared and
opened, and the results writer started. A failure in that setup stops the session once, with one
message naming the cause and what is already in the report folder. Tests in tests/hil/ are written once
for every DUT kind: the plugin never branches on the kind (the backend table in host.dut does).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from host.chip.detection import Thresholds
from host.dut.backend import Artifact, DutBackend, DutUnavailable
from host.dut.client import DutError
from host.dut.dut import Dut
from host.dut.select import BACKENDS, Choice, choose, create
from host.errors import HarnessError
from host.hil.options import OPTIONS, ROOT, HilOptions, list_images, validate
from host.model.quantize import QuantizedModel
from host.reference.reference import ReferenceResult
from host.report.results import ResultsWriter
from host.verdict import Tolerance

HIL_TESTS = ROOT / "tests" / "hil"


@dataclass
class HilState:
    """The session's HIL state, kept in `config.stash` (never in a module global)."""

    options: HilOptions
    choice: Choice | None = None
    results: ResultsWriter | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    unreadable_images: dict[str, str] = field(default_factory=dict)


STATE = pytest.StashKey[HilState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("yolo11-hil", "YOLO11n hardware-in-the-loop harness")
    for flag, kwargs in OPTIONS:
        group.addoption(flag, **kwargs)


def _runs_hil_tests(config: pytest.Config) -> bool:
    """True when the paths pytest was given include the HIL suite (no paths: testpaths, which is it)."""
    args = [a.split("::")[0] for a in config.args if not a.startswith("-")]
    if not args:
        return True
    for arg in args:
        path = Path(arg)
        path = (config.invocation_params.dir / path).resolve() if not path.is_absolute() else path.resolve()
        if path == HIL_TESTS or HIL_TESTS in path.parents or path in HIL_TESTS.parents:
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    """Check every option and choose the DUT kind before anything starts (pytest.UsageError: exit 4)."""
    options = HilOptions.from_getoption(config.getoption)
    state = HilState(options)
    config.stash[STATE] = state
    if not _runs_hil_tests(config):
        return
    try:
        validate(options)
        state.choice = choose(options.dut, options.target, options.port, options.require_board)
    except HarnessError as exc:
        raise pytest.UsageError(f"yolo11-hil: {exc}") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep tests whose `target` markers include --target (tests without the marker always run)."""
    target = config.stash[STATE].options.target
    selected, deselected = [], []
    for item in items:
        marks = list(item.iter_markers("target"))
        wanted = {t for m in marks for t in m.args}
        (selected if not marks or target in wanted else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_image" in metafunc.fixturenames:
        images = list_images(metafunc.config.stash[STATE].options.images)
        metafunc.parametrize("hil_image", images, ids=[p.stem for p in images])


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    if state.choice is None:
        return []
    line = f"yolo11-hil: target {state.options.target}, DUT {state.choice.kind.upper()} ({state.choice.reason})"
    banner = BACKENDS[state.choice.kind].banner
    return [line + (f" - {banner}" if banner else "")]


def harness_revision() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return (sha or "unknown") + ("-dirty" if dirty else "")


def _stop_session(state: HilState, step: str, exc: Exception) -> None:
    """End the whole run once, with one message: the cause and what is already in the report folder."""
    report_dir = state.options.report_dir
    if state.results is not None:
        state.results.add("session-error", step, passed=False, detail=str(exc))
    written = sorted(p.name for p in report_dir.glob("*") if p.is_file()) if report_dir.is_dir() else []
    kept = f"; already in {report_dir}/: {', '.join(written)}" if written else f"; nothing was written to {report_dir}/"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    pytest.exit(f"yolo11-hil: {step} failed: {first_line}{kept}", returncode=1)


def _session_step(state: HilState, step: str, action: Callable[[], Any]) -> Any:
    """Run one setup step; DutUnavailable skips the HIL tests, any other harness/device failure stops the run."""
    try:
        return action()
    except DutUnavailable as exc:
        pytest.skip(f"yolo11-hil: {exc}")
    except (HarnessError, DutError, OSError) as exc:
        _stop_session(state, step, exc)


@pytest.fixture(scope="session")
def hil_state(request: pytest.FixtureRequest) -> HilState:
    return request.config.stash[STATE]


@pytest.fixture(scope="session")
def hil_options(hil_state: HilState) -> HilOptions:
    return hil_state.options


@pytest.fixture(scope="session")
def hil_thresholds(hil_options: HilOptions) -> Thresholds:
    return hil_options.thresholds


@pytest.fixture(scope="session")
def hil_tolerance(hil_options: HilOptions) -> Tolerance:
    return Tolerance(hil_options.iou_tol, hil_options.score_tol, hil_options.unmatched_tol)


@pytest.fixture(scope="session")
def hil_model(hil_state: HilState) -> QuantizedModel:
    """The model artifact (quantized and cached, or the user's .espdl), checked against the firmware's esp-dl."""
    from host.espdl.check import check_file, errors
    from host.firmware import model_partition_size
    from host.model import quantize_model

    o = hil_state.options

    def build() -> QuantizedModel:
        model = quantize_model(o.model, target=o.target, imgsz=o.imgsz, preset=o.preset, calib_dir=o.calib)
        findings = check_file(model.espdl_path, o.target, model.espdl_version,
                              partition_size=model_partition_size(o.target, o.firmware_config))
        if errors(findings):
            raise HarnessError(f"the model would not run right on the firmware's esp-dl {model.espdl_version}; "
                               "nothing was flashed: " + "; ".join(str(f) for f in errors(findings)))
        hil_state.provenance["espdl_check_warnings"] = [str(f) for f in findings]
        return model

    return _session_step(hil_state, "model (quantize and check)", build)


@pytest.fixture(scope="session")
def hil_artifact(hil_state: HilState, hil_model: QuantizedModel) -> Artifact:
    """The flash pack: the PDL3 model-partition image a board gets at its `model` partition."""
    from host.espdl import write_pdl3

    def pack() -> Artifact:
        report_dir = hil_state.options.report_dir
        report_dir.mkdir(parents=True, exist_ok=True)
        path = report_dir / "model_partition.bin"
        path.write_bytes(write_pdl3({"model": hil_model.espdl_path.read_bytes()}))
        return Artifact(path, hil_model.espdl_path, hil_model.sha256)

    return _session_step(hil_state, "flash pack", pack)


@pytest.fixture(scope="session")
def hil_backend(hil_state: HilState, hil_artifact: Artifact) -> DutBackend:
    """The chosen DUT kind, prepared (a board is flashed with what changed)."""
    choice = hil_state.choice or _session_step(hil_state, "DUT choice", lambda: choose(
        hil_state.options.dut, hil_state.options.target, hil_state.options.port, hil_state.options.require_board))

    def prepare() -> DutBackend:
        backend = create(choice, hil_state.options.dut_options())
        backend.prepare(hil_artifact)
        return backend

    return _session_step(hil_state, f"{choice.kind} DUT preparation", prepare)


@pytest.fixture(scope="session")
def hil_dut(hil_state: HilState, hil_backend: DutBackend, hil_model: QuantizedModel) -> Iterator[Dut]:
    """The DUT, opened and booted once for the session; the session provenance and results writer start here."""
    dut = _session_step(hil_state, f"{hil_backend.kind} DUT start", hil_backend.open)
    try:
        info = _session_step(hil_state, "device info", dut.info)
        choice = hil_state.choice
        o = hil_state.options
        hil_state.provenance = {
            "dut_kind": dut.kind, "dut_reason": choice.reason if choice else "", "target": o.target,
            "chip": info.chip, "chip_revision": info.revision, "latency_label": dut.latency_label,
            "harness_sha": harness_revision(), "firmware_sha256": info.raw.get("app_sha256"),
            "idf_version": info.raw.get("idf"), "espdl_version": info.raw.get("espdl"),
            "model": hil_model.source.name, "model_source_sha256": hil_model.source.sha256,
            "model_sha256": hil_model.sha256, "device_model_sha256": info.model_sha256,
            "preset": hil_model.preset, "imgsz": hil_model.imgsz,
            **reference_provenance(hil_model, o.target, dut.kind),
            "tolerance": Tolerance(o.iou_tol, o.score_tol, o.unmatched_tol).describe(),
            **hil_state.provenance,
            **hil_backend.provenance(dut),
        }
        hil_state.results = ResultsWriter(o.report_dir, hil_state.provenance, resume=o.resume)
        yield dut
    finally:
        dut.close()


def reference_provenance(model: QuantizedModel, target: str, dut_kind: str) -> dict[str, str]:
    """Which engine computes the reference, and what a comparison with this DUT can and cannot show."""
    from host.reference.reference import engine_for

    from host.espdl import load
    from host.model.identity import identify

    engine = engine_for(model, target)
    out = {"reference_engine": engine.name, "model_identity": identify(load(model.espdl_path)).describe()}
    if model.graph_path is None:
        out["reference_note"] = ("the model is a prequantized .espdl: the reference runs it in the .espdl emulator"
                                 + (", the same engine as the simulated DUT, so the comparison checks the "
                                    "pipeline and the protocol, not the kernels" if dut_kind == "sim" else ""))
    return out


@pytest.fixture(scope="session")
def hil_results(hil_state: HilState, hil_dut: Dut) -> ResultsWriter:
    assert hil_state.results is not None  # started by hil_dut
    return hil_state.results


@pytest.fixture
def hil_record(hil_state: HilState, hil_results: ResultsWriter, record_property) -> ResultsWriter:
    """Record the session provenance as JUnit properties of this test, and return the results writer."""
    for key in ("dut_kind", "chip_revision", "harness_sha", "firmware_sha256", "model_sha256",
                "sdkconfig_sha256", "idf_version", "espdl_version"):
        record_property(key, hil_state.provenance.get(key))
    return hil_results


@pytest.fixture(scope="session")
def hil_reference(hil_state: HilState, hil_model: QuantizedModel) -> Callable[[Path], ReferenceResult]:
    """The host reference for one image, computed once per image per session."""
    from host.chip.preprocess import load_image
    from host.reference.reference import reference

    cache: dict[Path, ReferenceResult] = {}
    o = hil_state.options

    def compute(image: Path) -> ReferenceResult:
        if image not in cache:
            t = o.thresholds
            cache[image] = reference(load_image(image), hil_model, o.target, score_thr=t.score_thr,
                                     nms_thr=t.nms_thr, top_k=t.top_k)
        return cache[image]

    return compute


@pytest.fixture(scope="session")
def hil_reference_engine(hil_state: HilState, hil_model: QuantizedModel) -> Callable[[Any], ReferenceResult]:
    """The host reference for one RGB image (no caching: dataset runs see every image once)."""
    from host.reference.reference import engine_for, reference

    o = hil_state.options
    engine = engine_for(hil_model, o.target)
    t = o.thresholds

    def compute(rgb) -> ReferenceResult:
        return reference(rgb, hil_model, o.target, score_thr=t.score_thr, nms_thr=t.nms_thr, top_k=t.top_k,
                         engine=engine)

    return compute


@pytest.fixture(scope="session")
def hil_images(hil_state: HilState) -> list[Path]:
    return list_images(hil_state.options.images)


def load_test_image(state: HilState, path: Path):
    """An image as RGB888, or a HarnessError that also lists it among the session's unreadable images."""
    from host.chip.preprocess import load_image

    try:
        return load_image(path)
    except HarnessError as exc:
        state.unreadable_images[path.name] = str(exc)
        raise


def terminal_progress(config: pytest.Config, total: int, label: str) -> Callable[[int, int, float | None], None]:
    """A progress bar (images/s, ETA, running mAP) on the terminal, past pytest's output capture."""
    import contextlib
    import sys

    from tqdm import tqdm

    capman = config.pluginmanager.getplugin("capturemanager")
    visible = capman.global_and_fixture_disabled if capman is not None else contextlib.nullcontext
    with visible():
        bar = tqdm(total=total, unit="img", desc=label, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total_: int, running_map: float | None) -> None:
        with visible():
            bar.n = done
            if running_map is not None:
                bar.set_postfix_str(f"running mAP50-95 {running_map:.4f}", refresh=False)
            bar.refresh()
            if done >= total_:
                bar.close()

    return update


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or state.results is None:
        return
    from host.report.html import write_report

    if state.unreadable_images:
        state.provenance["unreadable_images"] = dict(state.unreadable_images)
    state.results.finish()
    write_report(state.results.dir, state.provenance, state.results.records)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or state.results is None:
        return
    p = state.provenance
    terminalreporter.write_sep("-", "yolo11-hil")
    terminalreporter.write_line(f"DUT: {p['dut_kind']} ({p['dut_reason']}); latencies {p['latency_label']}")
    terminalreporter.write_line(f"model {p['model']} sha256 {p['model_sha256'][:16]}..., {p['preset']} @ {p['imgsz']}; "
                                f"reference engine: {p['reference_engine']}")
    if p.get("reference_note"):
        terminalreporter.write_line(f"note: {p['reference_note']}")
    notes = p.get("sim_emulator_notes") or []
    if notes:
        terminalreporter.write_line(f"sim DUT fidelity: {len(notes)} emulator note(s), e.g. {notes[0]}")
    if state.unreadable_images:
        terminalreporter.write_line(f"unreadable images ({len(state.unreadable_images)}): "
                                    + ", ".join(sorted(state.unreadable_images)))
    terminalreporter.write_line(f"reports: {state.results.dir}/results.json, report.html")
