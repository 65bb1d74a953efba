"""The simulated DUT: the firmware's own request handling (`host.protocol.device.DeviceService`, the Python
twin of the C++ service) over a backend that runs the flashed .espdl in the host int8 emulator.

It loads the same PDL3 model-partition image a board gets (sha256-verified, as the firmware does at
boot, and refused if `espdl check` finds an error), runs ESP-DL's preprocess, the emulator (not
the PPQ executor the reference uses, so a sim run compares two implementations) and ESP-DL's
postprocess - esp-dl's own C++ built for the host (host.espdl_cpp) when it builds here, else host.chip's
Python; the info record's `prepost` field says which ran, and why when it is the fallback. Timings come
from `LatencyModel`, never from the host's clock. Faults from a `FaultPlan` are injected at the byte,
request, record and result level.

Queued detects (protocol 2) run on a worker thread, as the firmware runs them on a worker task, so the
next upload goes on while one image computes. With a modelled link (`--sim-link uart2m|usj`,
host.dut.sim.link) every model operation also takes the modelled chip time.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from host.chip.detection import OUTPUT_NAMES, Box, Thresholds
from host.chip.pipeline import DetectPipeline, Taps
from host.chip.preprocess import letterbox_geometry
from host.chip.releases import FIRMWARE_ESPDL_VERSION
from host.dut.sim.faults import FaultPlan
from host.dut.sim.latency import LatencyModel, count_macs
from host.errors import HarnessError
from host.protocol import messages as m
from host.protocol.device import DetectParams, DeviceBackend, DeviceService, LayerUs, Limits, StageUs, TensorView
from host.protocol.stream import BadFrame, DeviceEvent, Record
from host.protocol.wire import Chunk, encode_line

SIM_SOURCES = Path(__file__).resolve().parent


def sim_app_sha256() -> str:
    """The sim's "firmware" identity: a digest of its own source files."""
    digest = hashlib.sha256()
    for path in sorted(SIM_SOURCES.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass
class SimJob:
    """One queued detect on the worker thread."""

    image: bytes
    params: DetectParams
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[list[Box], StageUs] | None = None
    error: BaseException | None = None


class SimModelRunner(DeviceBackend):
    """What the firmware's model runner does, in Python: emulator, ESP-DL-exact pre/post, modelled timings."""

    #: take the modelled chip time for every model operation (a modelled `--sim-link`); set by SimDevice
    compute_wait = False
    #: called on the worker thread when a queued detect has finished (wakes the sim's loop); set by SimDevice
    on_job_done: Callable[[], None] | None = None
    _job: SimJob | None = None

    def __init__(self, pack: bytes, target: str, write: Callable[[bytes], None], faults: FaultPlan,
                 seed: int = 0, rev: int = 100, model_name: str | None = None) -> None:
        from host.espdl import load_bytes, read_pdl3
        from host.espdl.check import check_bytes, errors
        from host.espdl.engine import EmulatorEngine

        self.target, self.faults, self.rev, self._write = target, faults, rev, write
        package = read_pdl3(pack, verify=True)  # a damaged pack fails here, as the firmware refuses to boot it
        self.model_name = model_name or package.names()[0]
        blob = package.get(self.model_name)
        self.espdl_bytes = blob[: 16 + int.from_bytes(blob[8:12], "little")]  # the .espdl without pack padding
        problems = errors(check_bytes(self.espdl_bytes, target, FIRMWARE_ESPDL_VERSION))
        if problems:  # what a board would compute wrongly, the sim refuses to run
            raise HarnessError("model refused by `espdl check`: " + "; ".join(str(f) for f in problems))
        self.pack_sha256 = package.sha256.hex()
        self.model = load_bytes(self.espdl_bytes)
        self.model_sha256 = hashlib.sha256(self.espdl_bytes).hexdigest()
        self.engine = EmulatorEngine(self.model, target, FIRMWARE_ESPDL_VERSION)
        self.pipeline, self.prepost = sim_pipeline(self.engine, target)
        self.taps = fault_taps(faults)
        spec = self.engine.input
        self.input_name, self.imgsz, self.input_exponent, self.input_bits = spec.name, spec.height, spec.exponent, spec.bits
        self.latency = LatencyModel(target, self.imgsz, count_macs(self.model), seed=seed,
                                    slowdown=faults.stage_slowdown(),
                                    int16_layers=frozenset(self.model.int16_nodes()))
        self.app_sha256 = sim_app_sha256()
        self.records_sent = 0
        self.stream = 0
        self.last: dict[str, Any] | None = None

    # ------------------------------------------------------------------ output and clock
    def now_us(self) -> int:
        return time.monotonic_ns() // 1000

    def send(self, line: bytes) -> None:
        self.records_sent += 1
        if self.faults.log_noise:
            self._write(b"I (%d) hil: heap check ok\n" % self.records_sent + b"W (1) partial log without end ")
        if self.faults.flip_record == self.records_sent:
            i = len(line) // 2
            line = line[:i] + bytes([line[i] ^ 0x20]) + line[i + 1:]
        if self.faults.truncate_record == self.records_sent:
            line = line[: len(line) // 2] + b"\n"
        self._write(line)

    def _timings(self, runs: int = 1) -> list[dict[str, int]]:
        self.stream += 1
        return self.latency.sample(self.stream, runs)

    # ------------------------------------------------------------------ model operations
    def info(self) -> dict[str, Any]:
        sha = self.model_sha256 if not self.faults.wrong_model_sha else hashlib.sha256(b"other").hexdigest()
        heap = {"internal_free": 301_000, "internal_min": 287_000, "internal_largest": 245_000,
                "spiram_free": 22_700_000, "spiram_min": 22_100_000, "spiram_largest": 22_000_000}
        return dict(chip=self.target, rev=self.rev, cores=2, idf="sim", espdl=FIRMWARE_ESPDL_VERSION,
                    app_version="hil-sim", app_sha256=self.app_sha256, model_state="ok",
                    model_name=self.model_name, model_sha256=sha, pack_sha256=self.pack_sha256,
                    inputs=[m.tensor_info(self.input_name, self.model.inputs[0].shape, self.input_exponent,
                                          f"int{self.input_bits}")],
                    outputs=[m.tensor_info(o.name, o.shape, o.exponent) for o in self.model.outputs],
                    heap=heap, console="sim-pty", selftest="not_run")

    def model_error(self) -> tuple[str, str] | None:
        return None

    def accepts_image(self, width: int, height: int) -> str | None:
        try:
            letterbox_geometry(width, height, self.imgsz, self.imgsz)
        except HarnessError as exc:
            return str(exc)
        return None

    def _chip_time(self, started: float, us: int) -> None:
        """In a modelled link mode, take the modelled chip time `us` (counted from `started`)."""
        if self.compute_wait:
            left = started + us / 1e6 - time.monotonic()
            if left > 0:
                time.sleep(left)

    def detect(self, image: bytes, params: DetectParams) -> tuple[list[Box], StageUs]:
        started = time.monotonic()
        rgb = np.frombuffer(image, dtype=np.uint8).reshape(params.height, params.width, 3)
        stages = self.pipeline.detect(rgb, Thresholds(params.score_thr, params.nms_thr, params.top_k), self.taps)
        self.last = {"input": stages.input_tensor, "outputs": stages.raw.tensors, "exponents": stages.raw.exponents}
        t = self._timings()[0]
        self._chip_time(started, t["pre"] + t["model"] + t["post"])
        return stages.boxes, StageUs(t["pre"], t["model"], t["post"])

    def submit_detect(self, image: bytes, params: DetectParams) -> None:
        """Queued detect: computed on a worker thread (the firmware's worker task); detect_done() collects it."""
        if self._job is not None:
            raise RuntimeError("the sim's service started a second queued detect while one runs")
        job = self._job = SimJob(image, params)
        threading.Thread(target=self._run_job, args=(job,), name="sim-detect", daemon=True).start()

    def _run_job(self, job: SimJob) -> None:
        try:
            job.result = self.detect(job.image, job.params)
        except BaseException as exc:  # re-raised in the service's thread by detect_done()
            job.error = exc
        job.done.set()
        if self.on_job_done is not None:
            self.on_job_done()

    def detect_done(self, wait: bool) -> tuple[list[Box], StageUs] | None:
        job = self._job
        if job is None or not job.done.wait(None if wait else 0):
            return None
        self._job = None
        if job.error is not None:
            raise job.error
        return job.result

    def abandon_job(self) -> None:
        """A reset: let a running queued detect finish (the emulator is not re-entrant) and drop its result."""
        job, self._job = self._job, None
        if job is not None:
            job.done.wait()

    def rerun(self) -> StageUs:
        started = time.monotonic()
        t = self._timings()[0]
        self._chip_time(started, t["pre"] + t["model"] + t["post"])
        return StageUs(t["pre"], t["model"], t["post"])

    def forget_image(self) -> None:
        self.last = None

    def selftest(self) -> tuple[bool, int]:
        from host.espdl import selftest

        started = time.monotonic()
        result = selftest(self.model, self.target, FIRMWARE_ESPDL_VERSION)
        self.last = None  # Model::test() overwrites the tensors of the last detect, as on the device
        us = self._timings()[0]["model"]
        self._chip_time(started, us)
        return result.ok and not self.faults.selftest_fail, us

    def profile(self) -> tuple[list[LayerUs], int]:
        started = time.monotonic()
        self.stream += 1
        layers = self.latency.profile(self.stream)
        types = {n.name: n.op_type for n in self.model.nodes}
        self.last = None
        self._chip_time(started, sum(layers.values()))
        return [LayerUs(name, types[name], us) for name, us in layers.items()], sum(layers.values())

    def tensors(self) -> list[TensorView]:
        if self.last is None:
            return []
        views = [TensorView(self.input_name, str(self.last["input"].dtype), list(self.last["input"].shape),
                            self.input_exponent, np.ascontiguousarray(self.last["input"]).tobytes())]
        for name in OUTPUT_NAMES:
            arr = self.last["outputs"][name]
            views.append(TensorView(name, str(arr.dtype), list(arr.shape), self.last["exponents"][name],
                                    np.ascontiguousarray(arr).tobytes()))
        return views


def sim_pipeline(engine: Any, target: str) -> tuple[DetectPipeline, str]:
    """The sim's pipeline and what runs its pre/postprocess: esp-dl's own C++ built for the host when it can be
    built here, else host.chip's Python - with the reason, so the fallback is never silent."""
    from host import espdl_cpp
    from host.chip.postprocess import postprocess as python_postprocess

    status = espdl_cpp.status(target)
    if not status.available:
        return DetectPipeline(engine, target), status.description

    def postprocessor(*args: Any, **kwargs: Any) -> Any:
        try:
            return espdl_cpp.postprocess(*args, **kwargs)
        except espdl_cpp.TooManyCandidates:  # quadratic in esp-dl: an untrained model would stall the sim
            return python_postprocess(*args, **kwargs)

    return (DetectPipeline(engine, target, preprocessor=espdl_cpp.preprocess, postprocessor=postprocessor),
            f"{status.description}; host.chip postprocess for an image with more than {espdl_cpp.MAX_CANDIDATES} "
            f"candidates (esp-dl's sorted candidate list is quadratic)")


def fault_taps(faults: FaultPlan) -> Taps:
    """The plan's preprocess, kernel and postprocess faults as taps on the pipeline's stages."""

    def shift_input(tensor: np.ndarray) -> np.ndarray:  # sample the image one column off
        return np.roll(tensor, 1, axis=2)

    def corrupt_output(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # one int8 element +1
        flat = outputs[faults.corrupt_output].reshape(-1)
        i = int(np.argmax(flat))
        flat[i] = flat[i] + 1 if flat[i] < 127 else 126
        return outputs

    def perturb_boxes(boxes: list[Box]) -> list[Box]:  # the first box one pixel right
        if boxes:
            b = boxes[0]
            boxes[0] = Box(b.category, b.score, b.x1 + 1, b.y1, b.x2, b.y2)
        return boxes

    return Taps(input=shift_input if faults.preprocess_offset else None,
                outputs=corrupt_output if faults.corrupt_output else None,
                boxes=perturb_boxes if faults.perturb_boxes else None)


class SimService(DeviceService):
    """The firmware's request handling; the sim's info record also names its pre/postprocess (`prepost`)."""

    backend: SimModelRunner

    def _send(self, body: dict[str, Any]) -> None:
        if body.get("t") == m.INFO and body.get("ok"):
            body = {**body, "prepost": self.backend.prepost}
        super()._send(body)


class SimDevice:
    """Feed it the host's bytes; it answers through `write`. Boots when the host first writes (the handshake).

    compute_wait: take the modelled chip time for every model operation (a modelled `--sim-link`);
    on_job_done: called from the worker thread when a queued detect finishes (call `poll()` then).
    """

    def __init__(self, pack: bytes, target: str, write: Callable[[bytes], None], faults: FaultPlan | None = None,
                 seed: int = 0, rev: int = 100, model_name: str | None = None, compute_wait: bool = False,
                 on_job_done: Callable[[], None] | None = None) -> None:
        self.faults = faults or FaultPlan()
        self.backend = SimModelRunner(pack, target, write, self.faults, seed, rev, model_name)
        self.backend.compute_wait = compute_wait
        self.backend.on_job_done = on_job_done
        self._write = write
        self.service = self._new_service()
        self.model_sha256 = self.backend.model_sha256
        self.requests_seen: dict[str, int] = {}
        self.lines_seen = 0
        self.chunks_seen = 0
        self.hung = False
        self.booted = False

    def boot(self, reason: str = "poweron") -> None:
        self.booted = True
        self.backend.abandon_job()
        self.service = self._new_service()  # a reset forgets uploads, queued detects and images
        self.backend.forget_image()
        self._write(b"ESP-ROM:esp32p4 (simulated)\nI (25) boot: sim DUT starting\n")
        self.backend.send(encode_line(m.boot_record(reason, self.backend.app_sha256, "ok", self.model_sha256)))

    def feed(self, data: bytes) -> None:
        if not self.booted:  # the handshake: the host opened the port and is listening
            self.boot()
            return
        if not self.hung:
            self.service.feed(data)

    def poll(self) -> None:
        if self.booted and not self.hung:
            self.service.poll()

    def _new_service(self) -> DeviceService:
        """The firmware's request handling with the sim's request- and chunk-level faults in front of it."""
        return SimService(self.backend, Limits(), intercept=self._intercept)

    def _intercept(self, event: DeviceEvent) -> DeviceEvent | None:
        if isinstance(event, Record):
            return self._request_fault(event)
        if isinstance(event, Chunk):
            self.chunks_seen += 1
            if self.faults.drop_chunk == self.chunks_seen:
                return None
            if self.faults.flip_chunk == self.chunks_seen:
                return BadFrame("chunk CRC mismatch", event.upload_id, event.seq)
        return event

    def _request_fault(self, record: Record) -> DeviceEvent | None:
        """Apply request-level faults: the request, a rejected line in its place, or None when a fault ate it."""
        self.lines_seen += 1
        kind = record.body.get("t")
        if self.faults.garble_request == self.lines_seen:
            return BadFrame("record CRC mismatch", line=True)
        count = self.requests_seen[kind] = self.requests_seen.get(kind, 0) + 1
        if self.faults.hang == kind:
            self.hung = True
            return None
        if self.faults.panic == kind:
            self._write(b"Guru Meditation Error: Core  0 panic'ed (Load access fault). Exception was unhandled.\n"
                        b"MEPC    : 0x4000abcd  RA      : 0x4000beef  SP      : 0x4ff3c120\n"
                        b"Backtrace: 0x4000abcd:0x4ff3c120 0x4000beef:0x4ff3c140 |<-CORRUPTED\n"
                        b"Rebooting...\n")
            self.boot("panic")
            return None
        if self.faults.reboot_always == kind or (self.faults.reboot == kind and count == 1):
            self.boot("sw_reset")
            return None
        return record
