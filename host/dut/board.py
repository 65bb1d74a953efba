"""The board kind: the harness firmware built (or a CI build), what changed flashed with esptool, serial talk.

Building, partition layout and the flash plan belong to `host.firmware`; this module strings them
together for a session: find or build the firmware, put the model pack at the `model` partition,
run esptool for the regions that changed, then keep the port open for the whole session (unlike
pytest-embedded's function-scoped `dut`, no test resets the board).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from host.dut.backend import Artifact, DutOptions, DutUnavailable
from host.dut.client import ProtocolClient
from host.dut.dut import Dut
from host.dut.transport import SerialTransport
from host.firmware import FirmwareBuild, IdfMissing, build_firmware, model_partition, plan_flash
from host.firmware.build import FIRMWARE_DIR, build_dir
from host.firmware.flash import run_flash

BOOT_TIMEOUT_S = 15.0


def locate_build(target: str, config: str, firmware_dir: Path = FIRMWARE_DIR) -> FirmwareBuild:
    """A build from ESP-IDF when it is exported, else an existing build directory (e.g. a CI artifact),
    else DutUnavailable saying exactly what is missing."""
    try:
        return build_firmware(target, config, firmware_dir)
    except IdfMissing as missing:
        existing = build_dir(target, config, firmware_dir)
        if (existing / "flasher_args.json").is_file():
            return FirmwareBuild.from_dir(existing, target, config)
        raise DutUnavailable(f"no firmware build for {target}/{config} at {existing} and no ESP-IDF to make one: "
                             f"{missing}") from None


def console_baud(build: FirmwareBuild) -> int:
    try:
        sdkconfig = json.loads((build.path / "config" / "sdkconfig.json").read_text())
    except (OSError, ValueError):
        return 115200
    return int(sdkconfig.get("ESP_CONSOLE_UART_BAUDRATE", 115200))


class BoardBackend:
    """A chip on a serial port: flashed once per session (only what changed), reset by the auto-reset lines."""

    kind = "board"
    targets = ("esp32p4", "esp32s3")
    timed = True
    latency_label = "measured"
    banner = ""

    def __init__(self, options: DutOptions) -> None:
        if not options.port:
            raise DutUnavailable("--dut board needs a serial port: pass --port (or let --dut auto find the board)")
        self.options = options
        self.build: FirmwareBuild | None = None

    def prepare(self, artifact: Artifact) -> None:
        o = self.options
        self.build = locate_build(o.target, o.firmware_config)
        plan = plan_flash(self.build, o.port, model_image=artifact.pack,
                          model_part=model_partition(o.target, o.firmware_config), baud=o.flash_baud)
        run_flash(plan)

    def open(self) -> Dut:
        if self.build is None:
            raise DutUnavailable("the board was not prepared (flashed) before it was opened")
        transport = SerialTransport(self.options.port, baudrate=console_baud(self.build))
        client = ProtocolClient(transport, timeout_s=self.options.timeout_s)
        dut = Dut(self.kind, client, self.options.target, self.options.port, self.timed, self.latency_label)
        dut.boot = self.reset(dut)
        return dut

    def reset(self, dut: Dut) -> dict[str, Any]:
        """Pulse EN through RTS (Espressif dev kits' auto-reset circuit) and wait for the boot record."""
        port = dut.client.transport.port
        port.dtr, port.rts = False, True  # EN low: hold the chip in reset
        time.sleep(0.1)
        port.rts = False  # release: the firmware boots and prints its boot record
        return dut.client.wait_for_boot(BOOT_TIMEOUT_S)

    def provenance(self, dut: Dut) -> dict[str, Any]:
        info = dut.info().raw
        return {"port": dut.port, "firmware_config": info.get("config", self.options.firmware_config),
                "sdkconfig_sha256": info.get("sdkconfig_sha256"),
                "firmware_build": str(self.build.path) if self.build else None}
