"""The test-facing DUT: one interface over every backend (a board, the simulated DUT).

Tests call `info()`, `selftest()`, `detect(image)`, `dump()`, `bench(n, warmup)` and `profile()`;
what is behind the port (a flashed chip or the simulated DUT) only shows in `kind`, `timed` and
`latency_label`, set by the backend that opened it, and in the provenance every result carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from host.chip.detection import DEFAULT_THRESHOLDS, Thresholds
from host.dut.client import DutError, ProtocolClient
from host.protocol.messages import DetectResult, TensorDump, parse_detect


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

    def info(self) -> DeviceInfo:
        return DeviceInfo(self.client.call("info").body)

    def selftest(self) -> bool:
        return bool(self.client.call("selftest").body["ok"])

    def detect(self, image: np.ndarray, thresholds: Thresholds = DEFAULT_THRESHOLDS,
               timeout_s: float | None = None) -> DetectResult:
        rgb = np.ascontiguousarray(image, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"detect takes an RGB888 (H, W, 3) uint8 image, got shape {rgb.shape}")
        h, w = rgb.shape[:2]
        reply = self.client.detect(w, h, rgb.tobytes(), timeout_s=timeout_s, **thresholds.as_dict())
        return parse_detect(reply.body, reply.seconds)

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
