"""The host end of the device protocol over any byte transport: requests, uploads, retries, faults.

One request is in flight at a time, except queued detects (protocol 2): `submit_detect` uploads an image
and returns once the device has it, `collect` waits for its answer, and the answers of queued detects
that arrive during other requests are kept for `collect`. Records that belong to an earlier, abandoned
request are dropped by id. What the device prints between records is kept as its log (the last lines go
into every failure message). A failure is always named: a corrupted answer, an error record, a reboot,
a panic (with its backtrace text) or a silence past the timeout. Only what is safe to repeat is
repeated: a corrupted answer or a request the device could not read is resent, and a request
interrupted by a reboot is repeated once after the device has come back. A queued detect whose answer
was corrupted on the link (found with an `info` barrier: the device answers every queued detect before
any other request) or lost to a reboot is reported as lost (`DutLostAnswer`), for the caller to redo.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from host.protocol import BadRecord, LogLine, Record, RecordDecoder, UploadSender, encode_request
from host.protocol.messages import (
    ACK,
    BOOT,
    DETECT,
    E_BAD_CRC,
    E_BAD_JSON,
    E_UPLOAD_TIMEOUT,
    ERROR,
    INFO,
    READY,
    detect_request,
    request,
)
from host.protocol.upload import UploadFailed

PANIC_PATTERNS = re.compile(
    rb"Guru Meditation Error|abort\(\) was called|panic'ed|Backtrace:|Stack smashing|assert failed|"
    rb"\*\*\* PANIC"
)
RETRYABLE_ERROR_CODES = (E_BAD_CRC, E_BAD_JSON)


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def read(self, timeout: float) -> bytes: ...
    def reopen(self, timeout: float) -> None: ...
    def close(self) -> None: ...


class DutError(Exception):
    """The device did not give a valid answer; the message names what happened."""

    def __init__(self, message: str, log_tail: list[str] | None = None) -> None:
        tail = "\n".join(log_tail or [])
        super().__init__(message + (f"\n--- last device output ---\n{tail}" if tail else ""))
        self.log_tail = log_tail or []


class DutTimeout(DutError):
    """No final answer within the timeout (a hang, a dead link, or a wrong port)."""


class DutPanic(DutError):
    """The device printed a panic / abort; the backtrace text is in the message."""


class DutRebooted(DutError):
    """A boot record arrived in the middle of a request."""


class DutCorrupt(DutError):
    """A record failed its CRC or JSON check (line noise)."""


class DutLostAnswer(DutCorrupt):
    """The answer of a queued detect never arrived whole (corrupted on the link, or a reboot lost the job)."""


class DutReportedError(DutError):
    """The device answered with an error record."""

    def __init__(self, code: str, message: str, log_tail: list[str] | None = None) -> None:
        super().__init__(f"device error {code}: {message}", log_tail)
        self.code = code


class DeviceLines(deque):
    """The client's log: the last lines in memory; each line is also handed to `sink` when one is set
    (host.dut.devicelog streams them to the session's device.log)."""

    sink: Callable[[str], None] | None = None

    def append(self, line: str) -> None:
        super().append(line)
        if self.sink is not None:
            self.sink(line)


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    reboots: int = 0
    corrupt_records: int = 0
    bytes_out: int = 0
    upload_retransmits: int = 0
    link_seconds: float = 0.0  # wall time spent inside requests (device compute + link)


@dataclass
class Reply:
    """The final record of a request and the intermediate records that came before it."""

    body: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class ProtocolClient:
    """Drives the protocol over `transport`; the test-facing Dut is built on top of it."""

    def __init__(self, transport: Transport, timeout_s: float = 60.0, retries: int = 2,
                 log_lines: int = 2000) -> None:
        self.transport = transport
        self.timeout_s = timeout_s
        self.retries = retries
        self.decoder = RecordDecoder()
        self.log: DeviceLines = DeviceLines(maxlen=log_lines)
        self.boots: list[dict[str, Any]] = []
        self.stats = ClientStats()
        self._next_id = 1
        self._pending: deque = deque()
        # queued detects (protocol 2): id -> when its request was sent; answers kept for collect(); lost ids
        self._queued: dict[int, float] = {}
        self._finals: dict[int, tuple[dict[str, Any], float]] = {}
        self._lost: set[int] = set()
        self._suspect = False  # a corrupted record arrived while queued detects were outstanding

    # ------------------------------------------------------------------ public
    def call(self, kind: str, timeout_s: float | None = None, **fields: Any) -> Reply:
        """One request with the retry policy above."""
        return self._with_retries(lambda: self._exchange(request(kind, self._new_id(), **fields), timeout_s))

    def detect(self, width: int, height: int, rgb: bytes, timeout_s: float | None = None,
               chunk: int = 4096, window: int = 16, **thresholds: Any) -> Reply:
        """Upload an RGB888 image in acknowledged chunks and return the detect record."""
        def attempt() -> Reply:
            body = detect_request(self._new_id(), width, height, rgb, chunk=chunk, window=window, **thresholds)
            return self._exchange(body, timeout_s, upload=rgb)
        return self._with_retries(attempt)

    # ------------------------------------------------------------------ queued detects (protocol 2)
    def submit_detect(self, width: int, height: int, rgb: bytes, timeout_s: float | None = None,
                      chunk: int = 4096, window: int = 16, **thresholds: Any) -> int:
        """Send a queued detect and upload its image; return its request id once every chunk is acknowledged.

        The device computes it after the queued detects before it, while the host goes on (the next upload,
        its own work); `collect(id)` returns the answer. Send at most the device's `queue` of them before
        collecting the oldest (the device refuses more with error `busy`).
        """
        def attempt() -> Reply:
            body = detect_request(self._new_id(), width, height, rgb, chunk=chunk, window=window, queue=True,
                                  **thresholds)
            self._queued[body["id"]] = time.monotonic()
            try:
                return self._exchange(body, timeout_s, upload=rgb, until_uploaded=True)
            except BaseException:
                self.abandon(body["id"])
                raise
        return int(self._with_retries(attempt).body["id"])

    def collect(self, req_id: int, timeout_s: float | None = None) -> Reply:
        """The answer of queued detect `req_id` (waiting for it); DutLostAnswer when it cannot come any more."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        deadline = started + timeout
        try:
            while True:
                if req_id in self._finals:
                    rec, when = self._finals.pop(req_id)
                    sent = self._queued.pop(req_id)
                    if rec.get("t") == ERROR:
                        raise DutReportedError(str(rec.get("code")), str(rec.get("msg")), self.tail())
                    return Reply(rec, [], when - sent)
                if req_id in self._lost:
                    self._lost.discard(req_id)
                    self._queued.pop(req_id, None)
                    raise DutLostAnswer(f"detect {req_id}: the answer of this queued detect was lost (corrupted on "
                                        "the link, or the device rebooted)", self.tail())
                if req_id not in self._queued:
                    raise ValueError(f"request {req_id} is not an outstanding queued detect")
                if self._suspect:
                    self._barrier()
                    continue
                for event in self._events(min(deadline, time.monotonic() + 0.05)):
                    if isinstance(event, BadRecord):
                        self.stats.corrupt_records += 1
                        self._suspect = True
                        break
                    rec = event.body
                    if rec.get("t") == BOOT:
                        self.boots.append(rec)
                        self._lose_queued()
                        raise DutRebooted(f"the device rebooted (reason {rec.get('reason')!r}) while queued "
                                          "detects were outstanding", self.tail())
                    if self._keep_final(rec) and rec.get("id") == req_id:
                        break
                if req_id not in self._finals and not self._suspect and time.monotonic() >= deadline:
                    raise DutTimeout(f"detect {req_id}: no answer within {timeout:.1f} s", self.tail())
        finally:
            self.stats.link_seconds += time.monotonic() - started

    def abandon(self, req_id: int) -> None:
        """Stop waiting for queued detect `req_id`: its answer, when it comes, is dropped."""
        self._queued.pop(req_id, None)
        self._finals.pop(req_id, None)
        self._lost.discard(req_id)

    @property
    def queued(self) -> int:
        """Queued detects sent and not collected yet."""
        return len(self._queued)

    def _keep_final(self, rec: dict[str, Any]) -> bool:
        """Keep the final record of an outstanding queued detect for collect(); True when it was one."""
        rid = rec.get("id")
        if rid in self._queued and rec.get("t") in (DETECT, ERROR) and rid not in self._finals:
            self._finals[rid] = (rec, time.monotonic())
            return True
        return False

    def _lose_queued(self) -> None:
        """A reboot: every queued detect without an answer is lost."""
        self._lost.update(rid for rid in self._queued if rid not in self._finals)

    def _barrier(self) -> None:
        """After a corrupted record: any request that is not a queued detect is answered after every queued one,
        so once `info` is answered, an outstanding queued detect without an answer has lost it."""
        self._suspect = False
        self.call(INFO)
        self._lost.update(rid for rid in self._queued if rid not in self._finals)

    def wait_for_boot(self, timeout_s: float) -> dict[str, Any]:
        """Read until a boot record arrives (after a reset or a reboot)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self._events(deadline):
                if isinstance(event, Record) and event.body.get("t") == BOOT:
                    self.boots.append(event.body)
                    return event.body
        raise DutTimeout(f"no boot record within {timeout_s:.0f} s", self.tail())

    def tail(self, n: int = 20) -> list[str]:
        return list(self.log)[-n:]

    # ------------------------------------------------------------------ internals
    def _new_id(self) -> int:
        req_id = self._next_id
        self._next_id = self._next_id % 0x7FFFFFFF + 1
        return req_id

    def _with_retries(self, attempt: Callable[[], Reply]) -> Reply:
        rebooted = False
        tries = 0
        while True:
            try:
                return attempt()
            except (DutCorrupt, DutReportedError) as exc:
                retryable = isinstance(exc, DutCorrupt) or exc.code in RETRYABLE_ERROR_CODES
                if not retryable or tries >= self.retries:
                    raise
                tries += 1
                self.stats.retries += 1
                self._drain(0.2)
            except DutRebooted:
                if rebooted:
                    raise
                rebooted = True
                self.stats.reboots += 1
                self.stats.retries += 1

    def _drain(self, seconds: float) -> None:
        """Let a half-sent answer finish and drop it, so the retry starts clean."""
        deadline = time.monotonic() + seconds
        for _ in self._events(deadline):
            pass

    def _send(self, data: bytes) -> None:
        self.transport.write(data)
        self.stats.bytes_out += len(data)

    def _exchange(self, body: dict[str, Any], timeout_s: float | None, upload: bytes | None = None,
                  until_uploaded: bool = False) -> Reply:
        """Send `body` and read until its final record; with `until_uploaded` (a queued detect) only until its
        image is acknowledged whole (the returned Reply's body is then the "ready" record)."""
        started = time.monotonic()
        timeout = self.timeout_s if timeout_s is None else timeout_s
        deadline = started + timeout
        kind, req_id = body["t"], body["id"]
        self.stats.requests += 1
        self._send(encode_request(body))
        sender: UploadSender | None = None
        ready: dict[str, Any] | None = None
        records: list[dict[str, Any]] = []
        try:
            while True:
                if sender is not None and not sender.done:
                    now = time.monotonic()
                    try:
                        for frame in sender.poll(now):
                            self._send(frame)
                    except UploadFailed as exc:
                        raise DutError(f"image upload failed: {exc}", self.tail()) from exc
                    deadline = max(deadline, now + timeout)  # progress keeps a long upload alive
                if until_uploaded and sender is not None and sender.done and ready is not None:
                    return Reply(ready, records, time.monotonic() - started)
                for event in self._events(min(deadline, time.monotonic() + 0.05)):
                    if isinstance(event, BadRecord):
                        self.stats.corrupt_records += 1
                        if self._queued:
                            self._suspect = True  # it may have been a queued detect's answer
                        if until_uploaded and ready is not None:
                            break  # an ack or nak, most likely: the upload's own timeouts recover it
                        raise DutCorrupt(f"{kind}: corrupted record from the device ({event.reason})", self.tail())
                    rec = event.body
                    t = rec.get("t")
                    if t == BOOT:
                        self.boots.append(rec)
                        self._lose_queued()
                        raise DutRebooted(f"{kind}: the device rebooted during the request "
                                          f"(reason {rec.get('reason')!r})", self.tail())
                    if sender is not None and "up" in rec and t != READY:
                        ours = rec.get("up") == sender.upload_id
                        advanced = ours and t == ACK and int(rec.get("next", 0)) > sender.acked
                        sender.on_record(rec, time.monotonic())
                        if advanced or (ours and t != ACK):
                            break  # the window moved (or a chunk is to be resent): send before reading on
                        continue
                    if rec.get("id") != req_id and self._keep_final(rec):
                        continue  # an earlier queued detect's answer, kept for collect()
                    if t == ERROR and rec.get("id") in (req_id, 0):
                        if until_uploaded and ready is None and rec.get("code") == E_UPLOAD_TIMEOUT:
                            # our "ready" was lost on the link and the device gave up: send the request again
                            raise DutCorrupt(f"{kind}: the ready record was lost on the link", self.tail())
                        # id 0: the device could not read the request line, so it is ours (one in flight)
                        raise DutReportedError(str(rec.get("code")), str(rec.get("msg")), self.tail())
                    if rec.get("id") != req_id:
                        continue  # an answer to an abandoned request
                    if t == READY and upload is not None:
                        ready = rec
                        sender = UploadSender(upload, int(rec["up"]), int(rec["chunk"]), int(rec["win"]))
                        break  # send the first window at once
                    if t == kind:
                        return Reply(rec, records, time.monotonic() - started)
                    records.append(rec)
                if time.monotonic() >= deadline:
                    raise DutTimeout(f"{kind}: no answer within {timeout:.1f} s", self.tail())
        finally:
            if sender is not None:
                self.stats.upload_retransmits += sender.retransmits
            self.stats.link_seconds += time.monotonic() - started

    def _events(self, deadline: float):
        """Decoded records until `deadline` (log lines are consumed here; a panic raises)."""
        while True:
            while self._pending:
                yield self._pending.popleft()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                data = self.transport.read(min(remaining, 0.05))
            except OSError as exc:  # pyserial's SerialException is an OSError: the port vanished
                self.log.append(f"[host] port lost ({exc}); reopening (USB re-enumeration?)")
                self.transport.reopen(10.0)
                self.decoder = RecordDecoder()
                self._lose_queued()
                raise DutRebooted(f"the serial port disappeared ({exc}) and was reopened", self.tail()) from exc
            if not data:
                continue
            panicked = False
            for event in self.decoder.feed(data):
                if isinstance(event, LogLine):
                    self.log.append(event.text.decode("utf-8", "replace").rstrip("\r\n"))
                    panicked = panicked or bool(PANIC_PATTERNS.search(event.text))
                else:
                    self._pending.append(event)
            if panicked:
                self._collect_panic()

    def _collect_panic(self) -> None:
        """Read the rest of the panic report (backtrace, reboot banner) for the message, then fail."""
        self._lose_queued()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            data = self.transport.read(0.05)
            for event in self.decoder.feed(data) if data else ():
                if isinstance(event, LogLine):
                    self.log.append(event.text.decode("utf-8", "replace").rstrip("\r\n"))
                elif isinstance(event, Record) and event.body.get("t") == BOOT:
                    self.boots.append(event.body)
        raise DutPanic("the device panicked", self.tail(30))
