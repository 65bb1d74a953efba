"""Backend selection, table-driven: which DUT kinds exist, what each needs, and how `auto` chooses.

Every backend ends the same way - a byte transport to a device that speaks the harness protocol,
wrapped in a `Dut` - and differs only in how the device comes to life: flashed over esptool
(board), launched by pytest-embedded's emulator services (qemu, espemu), or spawned as a
process behind a pty (sim).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from host.errors import HarnessError

#: USB vendor ids of Espressif's own USB (USB-Serial-JTAG) and the USB-UART bridges on its dev kits.
BOARD_USB_VIDS = {0x303A: "Espressif USB-Serial-JTAG", 0x10C4: "Silicon Labs CP210x", 0x1A86: "WCH CH34x",
                  0x0403: "FTDI"}


@dataclass(frozen=True)
class Backend:
    kind: str
    targets: tuple[str, ...]
    binary: str | None  # an executable it needs on PATH
    install_hint: str

    def unavailable_reason(self, target: str) -> str | None:
        if target not in self.targets:
            return f"--dut {self.kind} does not support {target} (it supports {', '.join(self.targets)})"
        if self.binary and shutil.which(self.binary) is None:
            return f"--dut {self.kind} needs `{self.binary}` on PATH: {self.install_hint}"
        return None


BACKENDS: dict[str, Backend] = {
    "board": Backend("board", ("esp32p4", "esp32s3"), None, "connect a board and pass --port"),
    "qemu": Backend("qemu", ("esp32s3",), "qemu-system-xtensa",
                    "install Espressif's QEMU with `python $IDF_PATH/tools/idf_tools.py install qemu-xtensa` "
                    "(Espressif's QEMU has no ESP32-P4 machine)"),
    "espemu": Backend("espemu", ("esp32p4",), "esp-emu",
                      "download esp-emu from the espressif/esp-emulator releases and put it on PATH"),
    "sim": Backend("sim", ("esp32p4", "esp32s3"), None, ""),
}


@dataclass(frozen=True)
class Choice:
    kind: str
    port: str | None
    reason: str  # why this kind: shown in the session header and the report


def find_board_ports(list_ports: Callable[[], list] | None = None) -> list[tuple[str, str]]:
    """Serial ports that look like an Espressif board: (device, description)."""
    if list_ports is None:
        from serial.tools.list_ports import comports as list_ports
    found = []
    for port in list_ports():
        vid = getattr(port, "vid", None)
        if vid in BOARD_USB_VIDS:
            found.append((port.device, f"{BOARD_USB_VIDS[vid]} {getattr(port, 'serial_number', '') or ''}".strip()))
    return found


def choose(requested: str, target: str, port: str | None = None, require_board: bool = False,
           list_ports: Callable[[], list] | None = None) -> Choice:
    """Decide the DUT kind for a session; errors name what is missing and how to get it."""
    if requested not in ("auto", *BACKENDS):
        raise HarnessError(f"unknown --dut {requested!r}; choose auto, {', '.join(BACKENDS)}")
    if require_board and requested not in ("auto", "board"):
        raise HarnessError(f"--require-board contradicts --dut {requested}; drop one of them")
    if requested == "auto":
        if port:
            return Choice("board", port, f"--port {port} given")
        boards = find_board_ports(list_ports)
        if len(boards) == 1:
            return Choice("board", boards[0][0], f"found {boards[0][1]} at {boards[0][0]}")
        if len(boards) > 1:
            listing = ", ".join(f"{d} ({desc})" for d, desc in boards)
            raise HarnessError(f"several boards found ({listing}); pin one with --port or --port-serial-number")
        if require_board:
            raise HarnessError(f"--require-board: no {target} board found (no serial port with an Espressif or "
                               "dev-kit USB id); connect one or pass --port")
        return Choice("sim", None, "no board found: running on the SIMULATED DUT")
    reason = BACKENDS[requested].unavailable_reason(target)
    if reason:
        raise HarnessError(reason)
    if requested == "board" and not port:
        boards = find_board_ports(list_ports)
        if len(boards) != 1:
            raise HarnessError(f"--dut board: {'no' if not boards else 'more than one'} board port found; pass --port")
        port = boards[0][0]
    return Choice(requested, port, f"--dut {requested}")


def open_sim(pack: Path, target: str, faults: str = "", seed: int = 0, rev: int = 100, timeout_s: float = 60.0,
             boot_timeout_s: float = 30.0):
    """Start the simulated DUT on `pack` and return a connected Dut (boot record received)."""
    from host.dut.client import ProtocolClient
    from host.dut.dut import Dut
    from host.dut.sim.launcher import start_sim
    from host.dut.transport import SerialTransport

    sim = start_sim(pack, target, faults=faults, seed=seed, rev=rev)
    try:
        transport = SerialTransport(sim.port)
        client = ProtocolClient(transport, timeout_s=timeout_s)
        transport.write(b"\n")  # the handshake: the sim boots when the host is listening
        boot = client.wait_for_boot(boot_timeout_s)
    except BaseException:
        sim.stop()
        raise
    return Dut("sim", client, target, sim.port, close_hooks=[sim.stop], boot=boot)
