"""The board kind: the harness firmware built (or a CI build), what changed flashed with esptool, serial talk.

Building, partition layout and the flash plan belong to `host.firmware`; this module strings them
together for a session: find or build the firmware, put the model pack at the `model` partition,
run esptool for the regions that changed, then keep the port open for the whole session (unlike
pytest-embedded's function-scoped `dut`, no test resets the board). A reset is esptool's own hard reset
(`esptool.reset.HardReset`, what `--after hard-reset` runs) with the timing of the port's USB link, told by its
USB vendor id: the chip's USB-Serial-JTAG (0x303A) or a USB-UART bridge. A panic's backtrace is decoded against
the build's ELF (host.dut.panic).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from host.dut.backend import Artifact, DutOptions, DutUnavailable
from host.dut.client import DutRebooted, ProtocolClient
from host.dut.dut import Dut
from host.dut.panic import PanicDecoder, PanicDecodingClient
from host.dut.transport import SerialTransport
from host.firmware import FirmwareBuild, IdfMissing, build_firmware, model_partition, plan_flash
from host.firmware.build import FIRMWARE_DIR, build_dir
from host.firmware.flash import run_flash

BOOT_TIMEOUT_S = 15.0
USB_SERIAL_JTAG_VID = 0x303A  # Espressif: the chip's own USB-Serial-JTAG port
#: USB (VID, PID) of bridges with always-on hardware flow control (esp_pylib.constants.HARDWARE_FLOW_CONTROL_VID_PIDS,
#: which esptool consults): the SiLabs CP2102C
FLOW_CONTROL_BRIDGES = frozenset({(0x10C4, 0xEA64)})


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


def usb_ids(device: str, list_ports: Callable[[], list] | None = None) -> tuple[int | None, int | None]:
    """(VID, PID) of the USB device behind a serial port (a /dev/serial/by-id link works too); (None, None)
    when the port is not a USB one that pyserial lists."""
    if list_ports is None:
        from serial.tools.list_ports import comports as list_ports
    real = os.path.realpath(device)
    for port in list_ports():
        if os.path.realpath(port.device) == real:
            return getattr(port, "vid", None), getattr(port, "pid", None)
    return None, None


def usb_link(vid: int | None, pid: int | None) -> str:
    if vid == USB_SERIAL_JTAG_VID:
        return "USB-Serial-JTAG"
    return "USB-UART bridge" + (f" (USB {vid:04x}:{pid or 0:04x})" if vid is not None else " (USB id unknown)")


def hard_reset(port: Any, vid: int | None, pid: int | None) -> None:
    """Reset the chip into its app as esptool's `--after hard-reset` does: `esptool.reset.HardReset` pulses EN
    through RTS, with the longer hold and settle times of the USB-Serial-JTAG peripheral when the port is one
    (its USB device drops off the bus while the chip resets), and the CP2102C's flow-control variant.

    esptool's other sequences (ClassicReset and UnixTightReset for bridges, USBJTAGSerialReset) also pull
    IO0/boot low: they leave the chip in its ROM download mode, which is what flashing wants and the harness
    does not. DTR is released first (IO0 high), as esptool leaves it after those sequences."""
    from esptool.reset import HardReset

    port.dtr = False
    HardReset(port, uses_usb=vid == USB_SERIAL_JTAG_VID, flow_control=(vid, pid) in FLOW_CONTROL_BRIDGES)()


def wait_for_boot(client: ProtocolClient, timeout_s: float) -> dict[str, Any]:
    """The boot record after a reset; a port that vanishes meanwhile (USB-Serial-JTAG re-enumerating) has been
    reopened by the client, so keep waiting until the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.wait_for_boot(max(0.5, deadline - time.monotonic()))
        except DutRebooted:
            if time.monotonic() >= deadline:
                raise


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
        self.usb: tuple[int | None, int | None] = (None, None)

    def prepare(self, artifact: Artifact) -> None:
        o = self.options
        self.build = locate_build(o.target, o.firmware_config)
        plan = plan_flash(self.build, o.port, model_image=artifact.pack,
                          model_part=model_partition(o.target, o.firmware_config), baud=o.flash_baud)
        run_flash(plan)

    def open(self) -> Dut:
        if self.build is None:
            raise DutUnavailable("the board was not prepared (flashed) before it was opened")
        self.usb = usb_ids(self.options.port)
        transport = SerialTransport(self.options.port, baudrate=console_baud(self.build))
        client = PanicDecodingClient(transport, PanicDecoder.for_build(self.build.path, self.options.target),
                                     timeout_s=self.options.timeout_s)
        dut = Dut(self.kind, client, self.options.target, self.options.port, self.timed, self.latency_label)
        dut.boot = self.reset(dut)
        return dut

    def reset(self, dut: Dut) -> dict[str, Any]:
        """esptool's hard reset for this port's USB link, then the boot record."""
        hard_reset(dut.client.transport.port, *self.usb)
        return wait_for_boot(dut.client, BOOT_TIMEOUT_S)

    def provenance(self, dut: Dut) -> dict[str, Any]:
        info = dut.info().raw
        return {"port": dut.port, "firmware_config": info.get("config", self.options.firmware_config),
                "sdkconfig_sha256": info.get("sdkconfig_sha256"),
                "firmware_build": str(self.build.path) if self.build else None, "usb_link": usb_link(*self.usb)}
