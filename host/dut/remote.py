"""The remote kind: a serial port on another machine - an RFC2217 URL served by ser2net, given directly or
through a labgrid place acquired from the coordinator (and released when the session ends, also on failure).

Behind the port is a board (flashed with esptool over the URL, like a local one) or a simulated DUT that a
farm already started on the pack (nothing to flash; the identity tests check it runs this session's model).
Remote lines cannot pulse EN reliably (ser2net on a pty ignores DTR/RTS), so `open` does not wait for a
boot record: it asks `info` until the device answers.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from host.dut.backend import Artifact, DutOptions, DutUnavailable
from host.dut.client import DutError, ProtocolClient
from host.dut.dut import Dut
from host.dut.hardware_map import MapEntry
from host.dut.transport import SerialTransport

ANSWER_TIMEOUT_S = 20.0


class RemoteBackend:
    kind = "remote"
    targets = ("esp32p4", "esp32s3")
    timed = False  # set per entry: a remote board's latencies are the chip's
    latency_label = "simulated"
    banner = ""

    def __init__(self, options: DutOptions, entry: MapEntry) -> None:
        self.options = options
        self.entry = entry
        self.timed = entry.serves == "board"
        self.latency_label = "measured" if self.timed else "simulated"
        self.banner = "" if self.timed else "results are from a remote SIMULATED DUT, latencies are simulated"
        self.url: str | None = entry.url
        self._release: Callable[[], None] | None = None

    def prepare(self, artifact: Artifact) -> None:
        if self.entry.place:
            from host.dut.labgrid import acquire_place

            held = acquire_place(self.entry.place)
            self.url, self._release = held.url, held.release
        if self.url is None:
            raise DutUnavailable(f"{self.entry.describe()}: no URL to connect to")
        if self.entry.serves == "board":
            from host.dut.board import locate_build
            from host.firmware import model_partition, plan_flash
            from host.firmware.flash import run_flash

            o = self.options
            build = locate_build(o.target, o.firmware_config)
            run_flash(plan_flash(build, self.url, model_image=artifact.pack,
                                 model_part=model_partition(o.target, o.firmware_config), baud=o.flash_baud))

    def open(self) -> Dut:
        transport = SerialTransport(self.url)
        client = ProtocolClient(transport, timeout_s=self.options.timeout_s)
        hooks = [self._release] if self._release else []
        dut = Dut(self.kind, client, self.options.target, self.url, self.timed, self.latency_label, close_hooks=hooks)
        transport.write(b"\n")  # a simulated DUT boots when the host first writes
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while True:
            try:
                dut.info()
                return dut
            except DutError:
                if time.monotonic() > deadline:
                    dut.close()
                    raise

    def reset(self, dut: Dut) -> dict[str, Any]:
        """No reliable reset line over RFC2217: reconnect and wait for an answer."""
        dut.client.transport.reopen(10.0)
        return dut.info().raw

    def provenance(self, dut: Dut) -> dict[str, Any]:
        return {"port": self.url, "remote": self.entry.describe(), "labgrid_place": self.entry.place,
                "firmware_config": dut.info().raw.get("config", self.options.firmware_config if self.timed else "sim")}
