"""Host end of a conversation: send a request, drive its upload, collect its records until the final one.

Transport-free: the caller passes `write(bytes)` and `read(timeout_s) -> bytes` (a serial port, a
pty, pytest-embedded's dut, or an in-memory loop in tests). The client keeps the device's log text,
notices an unprompted `boot` record (the device reset under us) and turns `error` records into
`DeviceError` exceptions that carry the device's code.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from host.errors import HarnessError
from host.protocol import messages as m
from host.protocol.stream import BadRecord, LogLine, Record, RecordDecoder
from host.protocol.upload import UploadFailed, UploadSender


class DeviceError(HarnessError):
    """The device answered with an error record."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.code = body.get("code", "")
        self.body = body
        super().__init__(f"device error {self.code}: {body.get('msg', '')}")


class DeviceRebooted(HarnessError):
    """A boot record arrived during a request: the device crashed or was reset."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        super().__init__(f"the device rebooted during the request (reset reason {body.get('reason')}); "
                         "see the device log for a panic or watchdog message")


class DeviceTimeout(HarnessError):
    """No final record within the timeout."""


@dataclass
class Exchange:
    """Everything one request produced."""

    final: dict[str, Any]
    progress: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Client:
    write: Callable[[bytes], None]
    read: Callable[[float], bytes]
    clock: Callable[[], float] = time.monotonic
    log: bytearray = field(default_factory=bytearray)
    bad_records: list[BadRecord] = field(default_factory=list)
    boots: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._decoder = RecordDecoder()
        self._ids = itertools.count(1)
        self._pending: list[dict[str, Any]] = []

    def _records(self, timeout: float) -> list[dict[str, Any]]:
        if self._pending:
            out, self._pending = self._pending, []
            return out
        out = []
        for ev in self._decoder.feed(self.read(timeout)):
            if isinstance(ev, Record):
                out.append(ev.body)
            elif isinstance(ev, LogLine):
                self.log += ev.text
            else:
                self.bad_records.append(ev)
        return out

    def wait_boot(self, timeout: float) -> dict[str, Any]:
        """Wait for the boot record (after a reset the host caused)."""
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            for body in self._records(min(0.05, max(0.0, deadline - self.clock()))):
                if body["t"] == m.BOOT:
                    self.boots.append(body)
                    return body
        raise DeviceTimeout(f"no boot record within {timeout} s: is the firmware flashed and the console "
                            "on this port?")

    def request(self, kind: str, timeout: float, *, image: bytes | None = None, upload_timeout: float = 1.0,
                **fields: Any) -> Exchange:
        """Send one request and return its records; `image` drives a detect upload."""
        req_id = next(self._ids)
        if kind == m.DETECT:
            if image is None:
                raise ValueError("detect needs the image bytes")
            body = m.detect_request(req_id, fields.pop("w"), fields.pop("h"), image, **fields)
        else:
            body = m.request(kind, req_id, **fields)
        start = self.clock()
        self.write(m.encode_request(body))
        sender: UploadSender | None = None
        progress: list[dict[str, Any]] = []
        deadline = start + timeout
        while True:
            now = self.clock()
            if now > deadline:
                raise DeviceTimeout(f"no answer to {kind} (id {req_id}) within {timeout} s")
            if sender is not None and not sender.done:
                try:
                    frames = sender.poll(now)  # new chunks, NAKed ones, and timeout resends
                except UploadFailed as exc:
                    raise HarnessError(f"image upload failed: {exc}; check the cable and the baud rate") from None
                for frame in frames:
                    self.write(frame)
            for rec in self._records(0.01 if sender is not None and not sender.done else 0.05):
                if rec["t"] == m.BOOT:
                    self.boots.append(rec)
                    raise DeviceRebooted(rec)
                if rec["t"] in (m.ACK, m.NAK):
                    if sender is not None:
                        sender.on_record(rec, self.clock())
                    continue
                if rec.get("id") != req_id:
                    continue  # a late record of an earlier, abandoned request
                if rec["t"] == m.ERROR:
                    raise DeviceError(rec)
                if rec["t"] == m.READY:
                    try:
                        sender = UploadSender(image, rec["up"], rec["chunk"], rec["win"], timeout_s=upload_timeout)
                    except ValueError as exc:
                        raise HarnessError(f"device sent an unusable ready record {rec}: {exc}") from None
                    continue
                if rec["t"] == kind:
                    return Exchange(rec, progress, self.clock() - start)
                progress.append(rec)

    # Convenience wrappers ------------------------------------------------------------

    def info(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.request(m.INFO, timeout).final

    def detect(self, image: bytes, width: int, height: int, timeout: float = 120.0, **kw: Any) -> m.DetectResult:
        return m.parse_detect(self.request(m.DETECT, timeout, image=image, w=width, h=height, **kw).final)

    def dump(self, timeout: float = 120.0) -> dict[str, m.TensorDump]:
        ex = self.request(m.DUMP, timeout)
        tensors: dict[str, m.TensorDump] = {}
        for rec in ex.progress:
            if rec["t"] == m.TENSOR:
                tensors[rec["name"]] = m.TensorDump.from_record(rec)
            elif rec["t"] == m.PART:
                tensors[rec["name"]].add_part(rec)
        broken = [name for name, t in tensors.items() if not t.complete]
        if broken or list(tensors) != ex.final["tensors"]:
            raise HarnessError(f"tensor dump incomplete or corrupted ({', '.join(broken) or 'names differ'})")
        return tensors
