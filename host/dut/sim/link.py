"""The simulated DUT's link and device-time model (`--sim-link`): how fast bytes cross, and whether the sim
waits the modelled chip compute time.

| name     | bytes/s each way | latency | compute wait | what it stands for |
|----------|------------------|---------|--------------|--------------------|
| `none`   | unpaced          | 0       | no           | the pty as fast as it goes (the default; harness self-tests) |
| `uart2m` | 200,000          | 1 ms    | yes          | UART at 2 Mbaud 8N1 (10 bits a byte), `sdkconfig.ci.uart` |
| `usj`    | 1,000,000        | 1 ms    | yes          | USB-Serial-JTAG, full-speed USB bulk (`sdkconfig.ci.usj`) |

The USB-Serial-JTAG figure: a full-speed bulk endpoint moves at most 19 x 64 B per 1 ms frame (1.216 MB/s
raw). Public measurements of ESP32-S3 full-speed USB CDC streams (atomic14/usb-cdc-speed-test, 2025: about
7 Mbit/s with Arduino/TinyUSB and about 5 Mbit/s with an ESP-IDF build, device to host) put a real link at
0.6-0.9 MB/s; 1.0 MB/s is the planning figure of docs/protocol.md section 3, an upper bound a board's
`upload_us` replaces. The latency is one USB frame (usj), or the USB-UART bridge's transfer latency at its
lowest setting (uart2m); it applies per record and per chunk, on top of the serialization time.

In the modelled modes the sim also takes the modelled chip time for every model operation (detect, bench
runs, selftest, profile): host.dut.sim.latency's figures from Espressif's published P4/S3 latencies, the
same numbers the records report. A detect takes max(emulator time, modelled time), so a board-shaped run
can be measured here (tools/bench_sim_run.py).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from host.errors import HarnessError


@dataclass(frozen=True)
class LinkModel:
    name: str
    bytes_per_s: int  # 0: unpaced
    latency_s: float
    compute_wait: bool  # take the modelled chip compute time for every model operation

    @property
    def paced(self) -> bool:
        return self.bytes_per_s > 0


LINKS: dict[str, LinkModel] = {
    "none": LinkModel("none", 0, 0.0, False),
    "uart2m": LinkModel("uart2m", 200_000, 0.001, True),
    "usj": LinkModel("usj", 1_000_000, 0.001, True),
}
DEFAULT_LINK = "none"


def link_model(name: str | None) -> LinkModel:
    """The link of `--sim-link NAME`; a HarnessError names the choices."""
    model = LINKS.get(name or DEFAULT_LINK)
    if model is None:
        raise HarnessError(f"--sim-link {name!r} is unknown; choose one of {', '.join(LINKS)}")
    return model


#: Host bytes are delivered to the device in pieces of at most this size, each at its own arrival time.
PIECE = 1024


class PacedInput:
    """Host -> device: what the sim read from the pty reaches the device service once the link has carried it.

    Bytes queue behind each other at `bytes_per_s` from the moment the sim read them (the host's writes are
    bounded by the upload window, as on a board whose console buffer takes the window), plus the latency.
    """

    def __init__(self, model: LinkModel) -> None:
        self.model = model
        self._queue: deque[tuple[float, bytes]] = deque()
        self._free = 0.0  # when the link finishes carrying what it already has

    def receive(self, data: bytes, now: float) -> None:
        if not self.model.paced:
            self._queue.append((now, data))
            return
        for pos in range(0, len(data), PIECE):
            piece = data[pos:pos + PIECE]
            self._free = max(self._free, now) + len(piece) / self.model.bytes_per_s
            self._queue.append((self._free + self.model.latency_s, piece))

    def due(self, now: float) -> bytes:
        out = bytearray()
        while self._queue and self._queue[0][0] <= now:
            out += self._queue.popleft()[1]
        return bytes(out)

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None


class PacedOutput:
    """Device -> host: records leave at `bytes_per_s` plus the latency, on a writer thread of their own (the
    chip's console TX runs while the model computes), in the order the device wrote them."""

    def __init__(self, model: LinkModel, write: Callable[[bytes], None]) -> None:
        self.model = model
        self._write = write
        self._queue: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        self._free = 0.0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sim-link-tx", daemon=True)
        self._thread.start()

    def __call__(self, data: bytes) -> None:
        with self._lock:
            now = time.monotonic()
            self._free = max(self._free, now) + len(data) / self.model.bytes_per_s
            self._queue.put((self._free + self.model.latency_s, data))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            release, data = item
            delay = release - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._write(data)

    def close(self) -> None:
        self._queue.put(None)
