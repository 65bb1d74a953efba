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
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from host.chip.detection import Thresholds
from host.dut.backend import Artifact, DutBackend, DutUnavailable
from host.dut.client import DutError
from host.dut.dut import Dut
from host.dut.select import BACKENDS, choose, create
from host.errors import HarnessError
from host.hil.farm import BoardWatch, entry_options
from host.hil.finish import finish_accuracy, write_merged_report
from host.hil.options import OPTIONS, ROOT, HilOptions, list_images, validate
from host.hil.state import STATE, HilState, harness_revision, worker_report_dir
from host.model.quantize import QuantizedModel
from host.reference.reference import ReferenceResult
from host.report.results import ResultsWriter
from host.verdict import Tolerance

HIL_TESTS = ROOT / "tests" / "hil"


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
        preset = o.quantization_preset()
        model = quantize_model(o.model, target=o.target, imgsz=o.imgsz, preset=preset, calib_dir=o.calib)
        if preset.trains and model.preset == preset.name:  # the training settings are not in the preset's name
            hil_state.provenance["preset_settings"] = preset.describe()
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
                                                  lambda: from_map_entry(held.entry, entry_options(o, held.entry)))
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


@pytest.fixture(scope="session")
def hil_dut(hil_state: HilState, hil_backend: DutBackend, hil_model: QuantizedModel) -> Iterator[Dut]:
    """The DUT, opened and booted once for the session; the session provenance and results writer start here."""
    dut = _session_step(hil_state, f"{hil_backend.kind} DUT start", hil_backend.open)
    from host.dut.devicelog import attach_device_log  # everything the device prints, streamed as it arrives
    hil_state.provenance["device_log"] = attach_device_log(dut, worker_report_dir(hil_state),
                                                           hil_state.options.report_dir).link
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
        finish_accuracy(session, state)
    if state.results is not None:
        write_report(state.results.dir, state.provenance, state.results.records, state.accuracy)
    elif state.options.report_dir.is_dir() and any(state.options.report_dir.glob("gw*/results.jsonl")):
        write_merged_report(state)


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
    if p.get("sim_prepost"):
        write(f"sim DUT pre/postprocess: {p['sim_prepost']}")
    notes = p.get("sim_emulator_notes") or []
    if notes:
        write(f"sim DUT fidelity: {len(notes)} emulator note(s), e.g. {notes[0]}")
    if state.unreadable_images:
        write(f"unreadable images ({len(state.unreadable_images)}): " + ", ".join(sorted(state.unreadable_images)))
    if state.accuracy:
        a = state.accuracy
        figures = ", ".join(f"{engine} {a[engine]['map50_95']:.4f}/{a[engine]['map50']:.4f}"
                            for engine in ("device", "reference", "float") if a.get(engine))
        write(f"accuracy on {a['images']} images (mAP50-95/mAP50): {figures}; resumed {a['resumed']}; "
              f"uploads {'/'.join(a.get('detect_path') or ['?'])}")
        for name, gate in a["gates"].items():
            write(f"  gate {name}: {gate['verdict'].upper()} - {gate['message']}")
        if a["problem_counts"]:
            write("  dataset problems: " + ", ".join(f"{k} {v}" for k, v in a["problem_counts"].items()))
    write(f"reports: {state.options.report_dir}/results.json, report.html"
          + (", accuracy.json" if state.accuracy else ""))
