"""The device end of the protocol in Python: request validation, uploads and errors, over a pluggable backend.

The Python twin of firmware/components/hil_protocol/src/service.cpp (same rules, same error codes,
same window arithmetic; tests/host/protocol/test_protocol_device.py runs both on the same byte
streams and compares their answers). A simulated DUT implements `DeviceBackend` (run the .espdl in
an emulator, report modelled timings) and feeds the bytes it reads from its pty into
`DeviceService.feed`, writing what `backend.send` receives back to the pty.

Queued detects (protocol 2, docs/protocol.md 2.4.1): the service holds at most `Limits.queue` images
(one the backend computes, one uploading or waiting); `backend.submit_detect` starts a computation and
`backend.detect_done` reports its end, so uploads go on while the backend computes. Every request that
is not a queued detect first waits for the queued ones (their answers come first, in order).
"""

from __future__ import annotations

import abc
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from host.chip.detection import DEFAULT_THRESHOLDS, Box
from host.protocol import messages as m
from host.protocol.stream import BadFrame, DeviceEvent, Record, RequestDecoder
from host.protocol.upload import UploadReceiver
from host.protocol.wire import CHUNK_OVERHEAD, Chunk, crc32, encode_line, float32


@dataclass
class DetectParams:
    id: int
    width: int
    height: int
    size: int
    crc: int
    chunk: int = 4096
    window: int = 16
    score_thr: float = DEFAULT_THRESHOLDS.score_thr  # float32 value
    nms_thr: float = DEFAULT_THRESHOLDS.nms_thr
    top_k: int = DEFAULT_THRESHOLDS.top_k


@dataclass
class Limits:
    max_image: int = 1228800
    chunk_max: int = 8192
    window_max: int = 16
    rx_buffer: int = 65536  # bytes the transport holds unread; bounds the window
    upload_timeout_ms: int = 3000
    queue: int = m.QUEUE_DEPTH  # images held for queued detects: one computing, one uploading or waiting


@dataclass
class TensorView:
    name: str
    dtype: str
    shape: list[int]
    exponent: int
    data: bytes


@dataclass
class StageUs:
    pre: int = 0
    model: int = 0
    post: int = 0


@dataclass
class LayerUs:
    name: str
    type: str
    us: int


class DeviceBackend(abc.ABC):
    """What the service needs from a device: clock, output, model operations."""

    @abc.abstractmethod
    def now_us(self) -> int: ...

    @abc.abstractmethod
    def send(self, line: bytes) -> None: ...

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """Keyword arguments of messages.info_record except req_id, max_image, chunk_max, win_max."""

    @abc.abstractmethod
    def model_error(self) -> tuple[str, str] | None:
        """None when the model is usable, else (error code, message)."""

    def accepts_image(self, width: int, height: int) -> str | None:
        """None when the model can take a width x height image, else why not (its letterbox would be empty)."""
        return None

    def alloc_image(self, size: int) -> bytearray | None:
        return bytearray(size)

    @abc.abstractmethod
    def detect(self, image: bytes, params: DetectParams) -> tuple[list[Box], StageUs]: ...

    def submit_detect(self, image: bytes, params: DetectParams) -> None:
        """Queued detect (protocol 2): start detecting on `image` and return; `detect_done` reports the end.

        The default computes right here, synchronously (a backend without concurrency still serves queued
        detects, one after the other). The image stays the backend's until forget_image(), as with detect().
        """
        self._sync_result = self.detect(image, params)

    def detect_done(self, wait: bool) -> tuple[list[Box], StageUs] | None:
        """The result of the detect `submit_detect` started, once it has finished (None while it runs, or when
        none was started); with `wait`, block until it has finished."""
        result = getattr(self, "_sync_result", None)
        self._sync_result = None
        return result

    @abc.abstractmethod
    def rerun(self) -> StageUs: ...

    @abc.abstractmethod
    def forget_image(self) -> None: ...

    @abc.abstractmethod
    def selftest(self) -> tuple[bool, int]: ...

    @abc.abstractmethod
    def profile(self) -> tuple[list[LayerUs], int]: ...

    @abc.abstractmethod
    def tensors(self) -> list[TensorView]:
        """Tensors of the last detect, inputs first; [] when selftest/profile overwrote them."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class QueuedJob:
    """A queued detect whose image arrived whole: waiting for the backend, or being computed."""

    params: DetectParams
    image: bytearray
    upload_us: int


@dataclass
class DeviceService:
    """Feed host bytes in; records come out through backend.send."""

    backend: DeviceBackend
    limits: Limits = field(default_factory=Limits)
    #: sees every decoded request line and chunk frame first; returns the event to handle (possibly
    #: replaced) or None to drop it. How the simulated DUT injects link and request faults.
    intercept: Callable[[DeviceEvent], DeviceEvent | None] | None = None

    def __post_init__(self) -> None:
        self._decoder = RequestDecoder(max_payload=self.limits.chunk_max)
        self._rx: UploadReceiver | None = None
        self._pending: DetectParams | None = None  # the request of the upload in progress
        self._upload: bytearray | None = None  # its image buffer
        self._upload_queued = False  # the upload is a queued detect's
        self._image: bytearray | None = None  # the image of the last finished detect (bench reruns it)
        self._have_image = False
        self._running: QueuedJob | None = None  # the queued detect the backend computes
        self._waiting: deque[QueuedJob] = deque()  # queued detects uploaded whole, not started yet
        self._next_upload_id = 0
        self._last_activity_us = 0
        self._ready_us = 0

    @property
    def uploading(self) -> bool:
        return self._rx is not None

    @property
    def computing(self) -> bool:
        """A queued detect is being computed or waits for the backend."""
        return self._running is not None or bool(self._waiting)

    @property
    def images_held(self) -> int:
        """Image buffers the service holds: uploading, waiting, computing, and the last detect's (at most 2)."""
        return ((self._upload is not None) + len(self._waiting) + (self._running is not None)
                + (self._image is not None))

    def _send(self, body: dict[str, Any]) -> None:
        self.backend.send(encode_line(body))

    def _error(self, req_id: int, code: str, message: str) -> None:
        self._send(m.error_record(req_id, code, message))

    def feed(self, data: bytes) -> None:
        for event in self._decoder.feed(data):
            if self.intercept is not None:
                event = self.intercept(event)
            if isinstance(event, Record):
                self._request(event.body)
            elif isinstance(event, Chunk):
                self._chunk(event)
            elif isinstance(event, BadFrame):
                self._bad(event)

    def poll(self) -> None:
        """Call every few hundred ms (and whenever a queued detect may have finished): expires a stalled upload,
        answers the queued detects the backend has finished and starts the next one."""
        if self._rx is not None and (self.backend.now_us() - self._last_activity_us
                                     > self.limits.upload_timeout_ms * 1000):
            self._abort_upload(m.E_UPLOAD_TIMEOUT, "no valid chunk within the upload timeout; send detect again")
        self._collect(wait=False)

    # ------------------------------------------------------------------ events

    def _chunk(self, chunk: Chunk) -> None:
        if self._rx is None:
            return
        self._last_activity_us = self.backend.now_us()
        for reply in self._rx.on_chunk(chunk):
            self._send(reply)
        if self._rx.complete:
            self._finish_upload()

    def _bad(self, bad: BadFrame) -> None:
        if bad.line:
            if self._rx is None:
                if bad.reason.startswith("record body"):  # CRC fine, JSON not: the C++ service's bad_json
                    self._error(0, m.E_BAD_JSON, "request is not a JSON object: " + bad.reason)
                else:
                    code = m.E_BAD_CRC if bad.reason == "record CRC mismatch" else m.E_BAD_REQUEST
                    self._error(0, code, "request line rejected: " + bad.reason)
        elif bad.upload_id is not None and self._rx is not None:
            for reply in self._rx.on_bad_frame(bad.upload_id, bad.seq):
                self._send(reply)

    def _drop_image(self) -> None:
        """Forget the last detect's image (the model's tensors stop being that detect's)."""
        if self._image is not None:
            self.backend.forget_image()
            self._image = None
        self._have_image = False

    def _end_upload(self) -> None:
        self._rx = None
        self._upload = None
        self._decoder.max_payload = self.limits.chunk_max

    def _abort_upload(self, code: str, message: str) -> None:
        req_id = self._pending.id if self._pending else 0
        self._end_upload()
        self._error(req_id, code, message)

    def _require_model(self, req_id: int) -> bool:
        problem = self.backend.model_error()
        if problem is None:
            return True
        self._error(req_id, *problem)
        return False

    # ------------------------------------------------------------------ queued detects

    def _start_next(self) -> None:
        if self._running is not None or not self._waiting:
            return
        job = self._waiting.popleft()
        self._drop_image()  # the model's tensors are about to be this job's
        self._running = job
        self.backend.submit_detect(bytes(job.image), job.params)

    def _collect(self, wait: bool) -> None:
        """Answer every queued detect the backend has finished (with `wait`: all of them, blocking)."""
        while self._running is not None:
            result = self.backend.detect_done(wait)
            if result is None:
                return
            job, self._running = self._running, None
            boxes, us = result
            self._image, self._have_image = job.image, True  # the last detect: bench and dump use it
            p = job.params
            self._send(m.detect_record(p.id, p.width, p.height, boxes, us.pre, us.model, us.post, job.upload_us))
            self._start_next()

    def _drain(self) -> None:
        self._collect(wait=True)

    # ------------------------------------------------------------------ requests

    def _request(self, req: dict[str, Any]) -> None:
        kind, req_id = req.get("t"), req.get("id")
        if not isinstance(kind, str) or not _is_int(req_id) or not 1 <= req_id <= 0x7FFFFFFF:
            self._error(0, m.E_BAD_REQUEST, 'a request needs a string "t" and an integer "id" in 1..2^31-1')
            return
        queued = kind == m.DETECT and req.get("queue") is True
        if not queued:
            self._drain()  # the queued detects are answered first, in order
        if self._rx is not None:
            self._abort_upload(m.E_UPLOAD_ABORTED, "a new request arrived before the upload finished")
        handler = {m.INFO: self._info, m.SELFTEST: self._selftest, m.DETECT: self._detect, m.DUMP: self._dump,
                   m.BENCH: self._bench, m.PROFILE: self._profile}.get(kind)
        if handler is None:
            self._error(req_id, m.E_UNKNOWN,
                        f'unknown request type "{kind}" (known: info, selftest, detect, dump, bench, profile)')
            return
        handler(req_id, req)

    def _info(self, req_id: int, req: dict[str, Any]) -> None:
        self._send(m.info_record(req_id, **self.backend.info(), max_image=self.limits.max_image,
                                 chunk_max=self.limits.chunk_max, win_max=self.limits.window_max,
                                 queue=self.limits.queue))

    def _selftest(self, req_id: int, req: dict[str, Any]) -> None:
        if self._require_model(req_id):
            ok, us = self.backend.selftest()
            self._send(m.selftest_record(req_id, ok, us))

    def _dump(self, req_id: int, req: dict[str, Any]) -> None:
        if not self._require_model(req_id):
            return
        tensors = self.backend.tensors() if self._have_image else []
        if not tensors:
            self._error(req_id, m.E_NO_IMAGE,
                        "no tensors of a detect to dump (run detect first; selftest and profile overwrite them)")
            return
        for t in tensors:
            self._send(m.tensor_record(req_id, t.name, t.dtype, t.shape, t.exponent, t.data))
            for part in m.part_records(req_id, t.name, t.data):
                self._send(part)
        self._send(m.dump_record(req_id, [t.name for t in tensors]))

    def _bench(self, req_id: int, req: dict[str, Any]) -> None:
        warmup, runs = req.get("warmup", 1), req.get("runs", 10)
        if not (_is_int(warmup) and 0 <= warmup <= 1000 and _is_int(runs) and 1 <= runs <= 10000):
            self._error(req_id, m.E_BAD_REQUEST, "bench needs warmup in 0..1000 and runs in 1..10000")
            return
        if not self._require_model(req_id):
            return
        if not self._have_image:
            self._error(req_id, m.E_NO_IMAGE, "bench runs on the last detected image: run detect first")
            return
        for _ in range(warmup):
            self.backend.rerun()
        for i in range(runs):
            us = self.backend.rerun()
            self._send(m.run_record(req_id, i, us.pre, us.model, us.post))
        self._send(m.bench_record(req_id, warmup, runs))

    def _profile(self, req_id: int, req: dict[str, Any]) -> None:
        if self._require_model(req_id):
            layers, total = self.backend.profile()
            for i, layer in enumerate(layers):
                self._send(m.layer_record(req_id, i, layer.name, layer.type, layer.us))
            self._send(m.profile_record(req_id, len(layers), total))

    def _detect(self, req_id: int, req: dict[str, Any]) -> None:
        if not self._require_model(req_id):
            return
        w, h, size, crc = req.get("w"), req.get("h"), req.get("size"), req.get("crc")
        chunk, win, top_k = req.get("chunk", 4096), req.get("win", 16), req.get("topk", DEFAULT_THRESHOLDS.top_k)
        score, nms = req.get("score", DEFAULT_THRESHOLDS.score_thr), req.get("nms", DEFAULT_THRESHOLDS.nms_thr)
        ok = (_is_int(w) and 1 <= w <= 65535 and _is_int(h) and 1 <= h <= 65535 and req.get("fmt") == "rgb888"
              and _is_int(size) and size == w * h * 3 and _is_int(crc) and 0 <= crc <= 0xFFFFFFFF
              and _is_int(chunk) and 1 <= chunk <= 1 << 30 and _is_int(win) and 1 <= win <= 1 << 30
              and _is_int(top_k) and 1 <= top_k <= 1000 and _is_number(score) and 0.0 < score <= 1.0
              and _is_number(nms) and 0.0 < nms <= 1.0 and float32(score) < 1.0
              and isinstance(req.get("queue", False), bool))
        if not ok:
            self._error(req_id, m.E_BAD_REQUEST,
                        'detect needs w,h in 1..65535, fmt "rgb888", size = w*h*3, crc (u32); optional chunk, '
                        "win, topk in 1..1000, score in (0,1), nms in (0,1], queue (bool)")
            return
        queued = req.get("queue") is True
        if size > self.limits.max_image:
            self._error(req_id, m.E_TOO_LARGE, f"image of {size} bytes exceeds the firmware maximum "
                                               f"{self.limits.max_image} (CONFIG_HIL_MAX_IMAGE_BYTES)")
            return
        why = self.backend.accepts_image(w, h)
        if why is not None:
            self._error(req_id, m.E_BAD_REQUEST, f"the model cannot take a {w}x{h} image: {why}")
            return
        jobs = (self._running is not None) + len(self._waiting)
        if queued and jobs >= self.limits.queue:
            self._error(req_id, m.E_BUSY, f"the device holds {jobs} queued images (its queue is {self.limits.queue}): "
                                          "wait for a detect answer before the next upload")
            return
        if jobs == 0:
            self._drop_image()  # the previous image is replaced even if this upload fails
        self._upload = self.backend.alloc_image(size)
        if self._upload is None:
            self._error(req_id, m.E_NO_MEMORY, f"cannot allocate {size} bytes for the image")
            return
        self._upload_queued = queued
        chunk = min(chunk, self.limits.chunk_max)
        window = max(1, min(win, self.limits.window_max, self.limits.rx_buffer // (chunk + CHUNK_OVERHEAD)))
        self._pending = DetectParams(req_id, w, h, size, crc, chunk, window, float32(score), float32(nms), top_k)
        self._next_upload_id = 1 if self._next_upload_id == 255 else self._next_upload_id + 1
        self._rx = UploadReceiver(self._next_upload_id, size, chunk, self._upload)
        self._decoder.max_payload = chunk
        self._last_activity_us = self._ready_us = self.backend.now_us()
        self._send(m.ready_record(req_id, self._next_upload_id, chunk, window, self._rx.n))

    def _finish_upload(self) -> None:
        assert self._pending is not None and self._upload is not None
        upload_us = self.backend.now_us() - self._ready_us
        image, params = self._upload, self._pending
        self._end_upload()
        if crc32(bytes(image)) != params.crc:
            self._error(params.id, m.E_IMAGE_CRC, "all chunks arrived but the image CRC differs: send detect again")
            return
        if self._upload_queued:
            self._waiting.append(QueuedJob(params, image, upload_us))
            self._start_next()
            return
        self._image = image
        boxes, us = self.backend.detect(bytes(image), params)
        self._have_image = True
        self._send(m.detect_record(params.id, params.width, params.height, boxes, us.pre, us.model, us.post,
                                   upload_us))
