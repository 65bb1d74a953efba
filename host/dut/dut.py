"""The test-facing DUT: one interface over every backend (a board, the simulated DUT).

Tests call `info()`, `selftest()`, `detect(image)`, `detect_stream(images)`, `dump()`, `bench(n, warmup)`
and `profile()`; what is behind the port (a flashed chip or the simulated DUT) only shows in `kind`,
`timed` and `latency_label`, set by the backend that opened it, and in the provenance every result carries.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from host.chip.detection import DEFAULT_THRESHOLDS, Thresholds
from host.dut.client import DutError, DutLostAnswer, DutRebooted, ProtocolClient
from host.protocol.messages import QUEUE_DEPTH, DetectResult, TensorDump, parse_detect

#: How Dut.detect_stream ran: queued detects (the next image uploads while one computes), or one at a time.
STREAM_PATH = "stream"
ONE_AT_A_TIME_PATH = "one-at-a-time"


@dataclass(frozen=True)
class DeviceInfo:
    raw: dict[str, Any]

    @property
    def chip(self) -> str:
        return str(self.raw["chip"])

    @property
    def revision(self) -> int:
        return int(self.raw["rev"])

    @property
    def model_sha256(self) -> str:
        return str(self.raw["model_sha256"])

    @property
    def input_exponent(self) -> int:
        return int(self.raw["inputs"][0]["exp"])

    @property
    def proto(self) -> int:
        return int(self.raw.get("proto", 1))

    @property
    def queue(self) -> int:
        """Images the device holds for queued detects (protocol 2); 0 for a device without them."""
        return int(self.raw.get("queue", 0)) if self.proto >= 2 else 0


@dataclass(frozen=True)
class BenchResult:
    warmup: int
    runs: tuple[dict[str, int], ...]  # per run: {"pre": us, "model": us, "post": us}

    def stage(self, name: str) -> np.ndarray:
        return np.array([r[name] for r in self.runs], dtype=np.int64)


@dataclass
class Dut:
    """A connected device speaking the harness protocol."""

    kind: str
    client: ProtocolClient
    target: str
    port: str
    timed: bool  # True only when latencies are a chip's own measurements
    latency_label: str  # how to read its latencies: "measured", "simulated"
    close_hooks: list[Callable[[], None]] = field(default_factory=list)
    boot: dict[str, Any] | None = None
    streaming: bool = True  # use queued detects (detect_stream) when the device offers them
    _queue: int | None = field(default=None, repr=False)

    def info(self) -> DeviceInfo:
        info = DeviceInfo(self.client.call("info").body)
        self._queue = info.queue
        return info

    @property
    def stream_path(self) -> str:
        """How detect_stream runs on this device: "stream" (queued detects, pipelined) or "one-at-a-time" (a
        device without queued detects, or `streaming` switched off)."""
        if not self.streaming:
            return ONE_AT_A_TIME_PATH
        if self._queue is None:
            self.info()
        return STREAM_PATH if (self._queue or 0) >= QUEUE_DEPTH else ONE_AT_A_TIME_PATH

    def selftest(self) -> bool:
        return bool(self.client.call("selftest").body["ok"])

    def detect(self, image: np.ndarray, thresholds: Thresholds = DEFAULT_THRESHOLDS,
               timeout_s: float | None = None) -> DetectResult:
        rgb = _rgb(image)
        h, w = rgb.shape[:2]
        reply = self.client.detect(w, h, rgb.tobytes(), timeout_s=timeout_s, **thresholds.as_dict())
        return parse_detect(reply.body, reply.seconds)

    def detect_stream(self, images: Iterable[np.ndarray], thresholds: Thresholds = DEFAULT_THRESHOLDS,
                      timeout_s: float | None = None) -> Iterator[DetectResult]:
        """Detect on every image, results in order, pipelined where the device queues detects (protocol 2).

        While the device computes image k, image k+1 uploads; the host never has more than one image in flight
        beyond the one computing (the device holds two). The next upload starts before result k is yielded, so
        the caller's own work on result k overlaps the device too. An image whose answer the link or a reboot
        lost is redone one at a time; an image the device refuses raises at its place in the order. Between
        results the caller may use the Dut (info, detect, dump...): the device first finishes the queued
        images, whose answers are kept. `images` is read lazily, at most two ahead of the results.
        On a device without queued detects (stream_path "one-at-a-time") this is detect() per image.
        """
        if self.stream_path != STREAM_PATH:
            for image in images:
                yield self.detect(image, thresholds, timeout_s)
            return
        source = iter(images)
        pending: deque[tuple[int | BaseException, np.ndarray]] = deque()

        def submit() -> None:
            image = next(source, None)
            if image is None:
                return
            rgb = _rgb(image)
            h, w = rgb.shape[:2]
            try:
                ticket: int | BaseException = self.client.submit_detect(
                    w, h, rgb.tobytes(), timeout_s=timeout_s, **thresholds.as_dict())
            except DutError as exc:  # raised when its turn comes, so earlier results are not lost
                ticket = exc
            pending.append((ticket, rgb))

        try:
            for _ in range(QUEUE_DEPTH):
                submit()
            while pending:
                ticket, rgb = pending.popleft()
                if isinstance(ticket, BaseException):
                    raise ticket
                try:
                    reply = self.client.collect(ticket, timeout_s)
                    result = parse_detect(reply.body, reply.seconds)
                except (DutLostAnswer, DutRebooted):
                    result = self.detect(rgb, thresholds, timeout_s)  # redone one at a time, with the retry policy
                submit()  # the next upload goes while the device computes the image after this one
                yield result
        finally:  # closed early or failed: the answers still to come are not waited for
            for ticket, _ in pending:
                if not isinstance(ticket, BaseException):
                    self.client.abandon(ticket)

    def dump(self) -> dict[str, tuple[np.ndarray, int]]:
        """The int8 input tensor and the six outputs of the last detect: name -> (array, exponent)."""
        reply = self.client.call("dump")
        tensors: dict[str, TensorDump] = {}
        for rec in reply.records:
            if rec["t"] == "tensor":
                tensors[rec["name"]] = TensorDump.from_record(rec)
            elif rec["t"] == "part":
                tensors[rec["name"]].add_part(rec)
        out = {}
        for name, t in tensors.items():
            if not t.complete:
                raise DutError(f"dump of {name} is incomplete or fails its CRC ({len(t.data)} of {t.size} bytes)")
            out[name] = (np.frombuffer(bytes(t.data), dtype=np.dtype(t.dtype)).reshape(t.shape), t.exponent)
        return out

    def bench(self, runs: int, warmup: int = 1, timeout_s: float | None = None) -> BenchResult:
        reply = self.client.call("bench", timeout_s=timeout_s, warmup=warmup, runs=runs)
        rows = sorted((r for r in reply.records if r["t"] == "run"), key=lambda r: r["i"])
        if len(rows) != runs:
            raise DutError(f"bench asked for {runs} runs, the device reported {len(rows)}")
        return BenchResult(warmup, tuple({k: int(r[k]) for k in ("pre", "model", "post")} for r in rows))

    def profile(self) -> list[dict[str, Any]]:
        reply = self.client.call("profile")
        return [r for r in reply.records if r["t"] == "layer"]

    def close(self) -> None:
        try:
            self.client.transport.close()
        finally:
            for hook in reversed(self.close_hooks):
                hook()

    def reconnect(self, fresh: "Dut") -> dict[str, Any]:
        """Carry on over `fresh`, the connection to a restarted device (this one already closed): the tests keep
        their Dut object across a power cycle. Returns the new boot record."""
        self.client, self.port, self.close_hooks, self.boot = fresh.client, fresh.port, fresh.close_hooks, fresh.boot
        return self.boot


def _rgb(image: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(image, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"detect takes an RGB888 (H, W, 3) uint8 image, got shape {rgb.shape}")
    return rgb
