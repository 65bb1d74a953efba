"""The pytest plugin behind `pytest --target esp32p4`: options, DUT choice, session fixtures, reports.

Order of a session: options are checked and the DUT kind is chosen at configure time (a bad option or a
missing board ends the run there, in one line); then, once per session and only when a HIL test needs
it, the model artifact is quantized (cached) and checked, the flash pack written, the DUT prepared and
opened, and the results writer started. A failure in that setup stops the session once, with one
message naming the cause and what is already in the report folder. Tests in tests/hil/ are written once
for every DUT kind: the plugin never branches on the kind (the backend table in host.dut does).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from host.chip.detection import Thresholds
from host.dut.backend import Artifact, DutBackend, DutUnavailable
from host.dut.client import DutError, DutPanic, DutRebooted, DutTimeout
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
    worker: str = "main"  # the pytest-xdist worker id ("gw0", ...), or "main" without xdist
    workers: int = 1
    choice: Choice | None = None
    map_entries: list = field(default_factory=list)  # the hardware map's entries, when one is given
    run_id: str = ""  # one id for the whole run, shared by every pytest-xdist worker
    held: Any = None  # the hardware map entry this session holds (host.dut.hardware_map.HeldEntry)
    artifact: Artifact | None = None  # what the DUT was given (a board taking over gets the same)
    dut: Dut | None = None  # the session's DUT (a take-over swaps what is behind it)
    results: ResultsWriter | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    unreadable_images: dict[str, str] = field(default_factory=dict)
    accuracy: dict[str, Any] | None = None  # accuracy.json's content, when a dataset ran


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
    """Check every option and choose the DUT kind before anything starts (pytest.UsageError: exit 4).

    With a hardware map the DUT is not chosen here: each session (each pytest-xdist worker) locks one of
    the map's entries when its first HIL test needs a DUT."""
    try:
        options = HilOptions.from_getoption(config.getoption)
    except HarnessError as exc:
        raise pytest.UsageError(f"yolo11-hil: {exc}") from None
    if getattr(config.option, "dist", "no") == "load":
        # under `pytest -n N`: each dataset share is its own xdist group and so goes to its own worker (every
        # board takes a share); every other test is distributed one by one as with `--dist load`
        config.option.dist = "loadgroup"
    workerinput = getattr(config, "workerinput", None)
    state = HilState(options, worker=workerinput["workerid"] if workerinput else "main",
                     workers=int(workerinput.get("workercount", 1)) if workerinput else 1,
                     run_id=workerinput["testrunuid"] if workerinput else uuid.uuid4().hex)
    config.stash[STATE] = state
    if options.hardware_map is not None:
        config.pluginmanager.register(BoardWatch(state), "yolo11-hil-board-watch")
    if not _runs_hil_tests(config):
        return
    try:
        validate(options)
        if options.hardware_map is not None:
            from host.dut.hardware_map import load_map

            state.map_entries = load_map(options.hardware_map)
        else:
            state.choice = choose(options.dut, options.target, options.port, options.require_board)
    except HarnessError as exc:
        raise pytest.UsageError(f"yolo11-hil: {exc}") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep tests whose `target` markers include --target (tests without the marker always run); the dataset
    shares go first, so that each worker starts with one."""
    target = config.stash[STATE].options.target
    selected, deselected = [], []
    for item in items:
        marks = list(item.iter_markers("target"))
        wanted = {t for m in marks for t in m.args}
        (selected if not marks or target in wanted else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = sorted(selected, key=lambda item: "dataset_share" not in getattr(item, "fixturenames", ()))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_image" in metafunc.fixturenames:
        options = metafunc.config.stash[STATE].options
        index, count = options.shard
        images = list_images(options.images)[index::count]  # this CI runner's share (pytest-xdist splits it further)
        metafunc.parametrize("hil_image", images, ids=[p.stem for p in images])


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    if state.map_entries:
        from host.dut.hardware_map import matching

        usable = matching(state.map_entries, state.options.target, state.options.firmware_config)
        return [f"yolo11-hil: target {state.options.target}, DUTs from the hardware map {state.options.hardware_map}: "
                + ", ".join(e.describe() for e in usable) + "; each session locks one"]
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


class BoardWatch:
    """With a hardware map: a board that stops answering, panics or keeps rebooting is marked dead for the rest
    of the run (by name, in the journal), and this session takes over another live entry of the map for its
    remaining tests - a free board, or a simulated board (one more process). With no live entry left, the
    remaining tests fail naming the dead board: nothing passes, nothing is skipped silently."""

    DEATHS = (DutTimeout, DutPanic, DutRebooted)

    def __init__(self, state: HilState) -> None:
        self.state = state
        self.death: str | None = None
        self.no_board: str | None = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        yield
        if call.excinfo is not None and call.excinfo.errisinstance(self.DEATHS) and self.state.held is not None:
            self.death = f"{item.nodeid}: {str(call.excinfo.value).strip().splitlines()[0]}"

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.death is not None:
            reason, self.death = self.death, None
            self.no_board = take_over(self.state, reason)
        if self.no_board is not None:
            pytest.fail(self.no_board, pytrace=False)


def take_over(state: HilState, reason: str) -> str | None:
    """Mark the held board dead and move this session's DUT to another live map entry; None on success,
    else why no board is left (the remaining tests fail with it)."""
    from dataclasses import replace as dc_replace

    from host.dut.hardware_map import hold_one, mark_dead
    from host.dut.select import from_map_entry

    dead = state.held.entry
    mark_dead(dead, state.run_id, reason)
    state.held.release()
    detail = f"{dead.describe()} died: {reason}"
    try:
        held = hold_one(state.map_entries, state.options.target, state.options.firmware_config, state.worker,
                        run_id=state.run_id, wait_s=1.0)
        choice, backend = from_map_entry(held.entry, _entry_options(state.options, held.entry))
        backend.prepare(state.artifact)
        fresh = backend.open()
    except (HarnessError, DutError, OSError) as exc:
        message = f"{detail}; no live board left to take over its tests ({str(exc).strip().splitlines()[0]})"
        if state.results is not None:
            state.results.add("board-dead", dead.id, passed=False, board=dead.id, detail=message)
        return message
    old = state.dut
    old.close()
    old.client, old.port, old.close_hooks, old.boot = fresh.client, fresh.port, fresh.close_hooks, fresh.boot
    state.held, state.choice = held, choice
    state.provenance["board"] = held.entry.id
    if state.results is not None:
        state.results.tags["board"] = held.entry.id
        state.results.add("board-dead", dead.id, passed=False, board=dead.id,
                          detail=f"{detail}; its remaining tests ran on {held.entry.id}")
    return None


def _stop_session(state: HilState, step: str, exc: Exception) -> None:
    """End the whole run once, with one message: the cause and what is already in the report folder. A farm
    worker whose board fails at setup instead marks it dead and leaves its tests to the other boards."""
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
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # workers of one run write the same bytes: atomically
        tmp.write_bytes(write_pdl3({"model": hil_model.espdl_path.read_bytes()}))
        os.replace(tmp, path)
        hil_state.artifact = Artifact(path, hil_model.espdl_path, hil_model.sha256)
        return hil_state.artifact

    return _session_step(hil_state, "flash pack", pack)


@pytest.fixture(scope="session")
def hil_backend(hil_state: HilState, hil_artifact: Artifact) -> Iterator[DutBackend]:
    """The chosen DUT kind, prepared (a board is flashed with what changed). With a hardware map, this session
    first locks one of its entries (released when the session ends, or when the process dies)."""
    o = hil_state.options
    held = None
    if hil_state.map_entries:
        from host.dut.hardware_map import hold_one
        from host.dut.select import from_map_entry

        held = _session_step(hil_state, "hardware map", lambda: hold_one(
            hil_state.map_entries, o.target, o.firmware_config, hil_state.worker, run_id=hil_state.run_id,
            wait_s=o.dut_timeout if hil_state.workers > 1 else 0.0))
        hil_state.held = held
        hil_state.choice, backend = _session_step(hil_state, "hardware map entry",
                                                  lambda: from_map_entry(held.entry, _entry_options(o, held.entry)))
    else:
        hil_state.choice = hil_state.choice or _session_step(hil_state, "DUT choice", lambda: choose(
            o.dut, o.target, o.port, o.require_board))
        backend = create(hil_state.choice, o.dut_options())
    try:
        _session_step(hil_state, f"{hil_state.choice.kind} DUT preparation", lambda: backend.prepare(hil_artifact))
        hil_state.provenance["board"] = held.entry.id if held else hil_state.choice.kind
        yield backend
    finally:
        if held is not None:
            held.release()


def _entry_options(options: HilOptions, entry):
    """The DUT options for a map entry: its own sim faults (harness self-tests) and firmware config."""
    from dataclasses import replace

    return replace(options.dut_options(), sim_faults=entry.faults or options.sim_faults,
                   firmware_config=entry.firmware_config or options.firmware_config)


@pytest.fixture(scope="session")
def hil_dut(hil_state: HilState, hil_backend: DutBackend, hil_model: QuantizedModel) -> Iterator[Dut]:
    """The DUT, opened and booted once for the session; the session provenance and results writer start here."""
    dut = _session_step(hil_state, f"{hil_backend.kind} DUT start", hil_backend.open)
    hil_state.dut = dut
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
        hil_state.results = ResultsWriter(worker_report_dir(hil_state), hil_state.provenance, resume=o.resume,
                                          tags={"board": hil_state.provenance.get("board")})
        yield dut
    finally:
        dut.close()


def worker_report_dir(state: HilState) -> Path:
    """Where this session writes: the report folder, or its worker's subfolder under pytest-xdist (the
    controller merges them at the end)."""
    return state.options.report_dir / state.worker if state.worker != "main" else state.options.report_dir


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


def dataset_setup(state: HilState, model: QuantizedModel):
    """The resume key of this session's dataset run."""
    from host.runs.dataset import RunSetup

    return RunSetup(model.sha256, str(state.provenance.get("dut_kind")), state.options.target,
                    state.options.thresholds)


def _finish_accuracy(session: pytest.Session, state: HilState) -> None:
    """accuracy.json for the whole set, from every journal (this process's, or every worker's); a failing
    gate fails the run."""
    from host.dataset import load_dataset
    from host.runs.finish import accuracy_result, journals, write_json
    from host.verdict import Tolerance

    o = state.options
    records = journals(o.report_dir)
    sessions = [r for r in records if r.get("kind") == "session" and r.get("model_sha256")]
    if not sessions:
        return
    dataset = load_dataset(o.dataset)
    latest = sessions[-1]
    setup_json = {"target": o.target, "imgsz": latest.get("imgsz"), "model_sha256": latest["model_sha256"],
                  "dataset_sha256": dataset.digest(), "dataset": str(o.dataset),
                  "thresholds": o.thresholds.as_dict()}
    exact = Tolerance(o.iou_tol, o.score_tol, o.unmatched_tol).exact
    found = accuracy_result(dataset, records, setup_json, exact, o.max_map_drop, o.accuracy_baselines,
                            o.accuracy_tolerance)
    if found is None:
        return
    result, gates = found
    from host.runs.finish import worst_images

    result["worst_images"] = worst_images(dataset, records, o.report_dir)
    result["provenance"] = {k: latest.get(k) for k in ("dut_kind", "harness_sha", "reference_engine",
                                                        "latency_label", "firmware_sha256")}
    write_json(o.report_dir / "accuracy.json", result)
    state.accuracy = result
    if any(g.status == "fail" for g in gates) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    from host.report.html import write_report

    if state.results is not None:
        if state.unreadable_images:
            state.provenance["unreadable_images"] = dict(state.unreadable_images)
        state.results.finish()
    if state.worker != "main":
        if state.results is not None:
            write_report(state.results.dir, state.provenance, state.results.records)
        return  # the controller merges the workers' journals
    if state.options.dataset is not None and _runs_hil_tests(session.config):
        _finish_accuracy(session, state)
    if state.results is not None:
        write_report(state.results.dir, state.provenance, state.results.records, state.accuracy)
    elif state.options.report_dir.is_dir() and any(state.options.report_dir.glob("gw*/results.jsonl")):
        _write_merged_report(state)


def _write_merged_report(state: HilState) -> None:
    """The controller of a pytest-xdist run: one report from every worker's journal; every result names its board."""
    from host.report.html import write_report
    from host.runs.finish import journals, write_json

    records = journals(state.options.report_dir)
    sessions = [r for r in records if r.get("kind") == "session"]
    results = [r for r in records if r.get("kind") != "session"]
    provenance = dict(sessions[-1]) if sessions else {}
    provenance["boards"] = sorted({str(s.get("board")) for s in sessions})
    provenance["dead_boards"] = [r["detail"] for r in results if r.get("kind") == "board-dead"]
    provenance.pop("board", None)
    state.provenance = provenance
    write_json(state.options.report_dir / "results.json", {"session": provenance, "sessions": sessions,
                                                           "results": results})
    write_report(state.options.report_dir, provenance, results, state.accuracy)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.provenance.get("model_sha256"):
        return
    p = state.provenance
    write = terminalreporter.write_line
    terminalreporter.write_sep("-", "yolo11-hil")
    if p.get("boards"):
        write(f"DUTs: {len(p['boards'])} from the hardware map ({', '.join(p['boards'])}); one report merges them")
        for dead in p.get("dead_boards") or []:
            write(f"DEAD BOARD: {dead}")
    else:
        write(f"DUT: {p['dut_kind']} ({p['dut_reason']}); latencies {p['latency_label']}")
    write(f"model {p['model']} sha256 {p['model_sha256'][:16]}..., {p['preset']} @ {p['imgsz']}; "
          f"reference engine: {p['reference_engine']}")
    if p.get("reference_note"):
        write(f"note: {p['reference_note']}")
    notes = p.get("sim_emulator_notes") or []
    if notes:
        write(f"sim DUT fidelity: {len(notes)} emulator note(s), e.g. {notes[0]}")
    if state.unreadable_images:
        write(f"unreadable images ({len(state.unreadable_images)}): " + ", ".join(sorted(state.unreadable_images)))
    if state.accuracy:
        a = state.accuracy
        figures = ", ".join(f"{engine} {a[engine]['map50_95']:.4f}/{a[engine]['map50']:.4f}"
                            for engine in ("device", "reference", "float") if a.get(engine))
        write(f"accuracy on {a['images']} images (mAP50-95/mAP50): {figures}; resumed {a['resumed']}")
        for name, gate in a["gates"].items():
            write(f"  gate {name}: {gate['verdict'].upper()} - {gate['message']}")
        if a["problem_counts"]:
            write("  dataset problems: " + ", ".join(f"{k} {v}" for k, v in a["problem_counts"].items()))
    write(f"reports: {state.options.report_dir}/results.json, report.html"
          + (", accuracy.json" if state.accuracy else ""))
