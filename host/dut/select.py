"""Which DUT kinds exist and how `--dut auto` chooses one: a table, no per-kind branches elsewhere.

`auto` takes a board when exactly one is found for the target, else the simulated DUT - except on
CI (the CI environment variable set), where a missing board is an error unless `--dut sim` says the
simulator is meant: a release gate must never pass on the simulator by accident.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from host.dut import qemu
from host.dut.backend import DutBackend, DutOptions, DutUnavailable
from host.dut.board import BoardBackend
from host.dut.hardware_map import MapEntry
from host.dut.remote import RemoteBackend
from host.dut.sim.backend import SimBackend
from host.errors import HarnessError

#: kind -> backend class. A kind that cannot run is not offered: Espressif's QEMU only when it is on PATH.
BACKENDS: dict[str, type] = {"board": BoardBackend, "sim": SimBackend}
if qemu.available():
    BACKENDS["qemu"] = qemu.QemuBackend
CHOICES = ("auto", *BACKENDS)
#: kinds this harness has that cannot run here, and how to get them
NOT_INSTALLED = {"qemu": qemu.INSTALL_HINT}

#: USB vendor ids of Espressif's own USB (USB-Serial-JTAG) and the USB-UART bridges on its dev kits.
BOARD_USB_VIDS = {0x303A: "Espressif USB-Serial-JTAG", 0x10C4: "Silicon Labs CP210x", 0x1A86: "WCH CH34x",
                  0x0403: "FTDI"}


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
           list_ports: Callable[[], list] | None = None, environ: Mapping[str, str] | None = None) -> Choice:
    """Decide the DUT kind for a session; errors name what is missing and how to get it."""
    environ = os.environ if environ is None else environ
    check_requested(requested)
    if require_board and requested not in ("auto", "board"):
        raise HarnessError(f"--require-board contradicts --dut {requested}; drop one of them")
    if requested != "auto" and target not in BACKENDS[requested].targets:
        raise HarnessError(f"--dut {requested} does not support {target} (it supports "
                           f"{', '.join(BACKENDS[requested].targets)})")
    if requested == "sim":
        return Choice("sim", None, "--dut sim: running on the SIMULATED DUT")
    if requested == "qemu":
        return Choice("qemu", None, "--dut qemu: Espressif's QEMU emulating the chip")
    if port:
        return Choice("board", port, f"--port {port} given")
    boards = find_board_ports(list_ports)
    if len(boards) == 1:
        return Choice("board", boards[0][0], f"found {boards[0][1]} at {boards[0][0]}")
    if len(boards) > 1:
        listing = ", ".join(f"{d} ({desc})" for d, desc in boards)
        raise HarnessError(f"several boards found ({listing}); pin one with --port")
    if requested == "board" or require_board:
        raise HarnessError(f"no {target} board found (no serial port with an Espressif or dev-kit USB id); "
                           "connect one or pass --port")
    if environ.get("CI"):
        raise HarnessError(f"CI is set and no {target} board was found: pass --dut sim to run on the simulated "
                           "DUT on purpose, or connect a board (--port)")
    return Choice("sim", None, "no board found: running on the SIMULATED DUT")


def check_requested(requested: str) -> None:
    """A --dut value this machine can run, else a HarnessError that says how to install the kind or what to pick."""
    if requested in ("auto", *BACKENDS):
        return
    if requested in NOT_INSTALLED:
        raise HarnessError(f"--dut {requested} cannot run here: {NOT_INSTALLED[requested]}")
    raise HarnessError(f"unknown --dut {requested!r}; choose one of {', '.join(('auto', *BACKENDS))}")


def create(choice: Choice, options: DutOptions) -> DutBackend:
    """The backend object for a choice (the port the choice found wins over the options')."""
    return BACKENDS[choice.kind](replace(options, port=choice.port or options.port))


def from_map_entry(entry: MapEntry, options: DutOptions,
                   list_ports: Callable[[], list] | None = None) -> tuple[Choice, DutBackend]:
    """The backend for a hardware-map entry this session holds."""
    reason = f"hardware map entry {entry.describe()}"
    if entry.kind == "sim":
        return Choice("sim", None, reason + ": a SIMULATED DUT"), SimBackend(options, rev=entry.revision or 100)
    if entry.kind == "remote":
        return Choice("remote", entry.url, reason), RemoteBackend(options, entry)
    port = entry.port or _port_of_serial(entry.serial_number, list_ports)
    return Choice("board", port, reason), BoardBackend(replace(options, port=port))


def _port_of_serial(serial_number: str | None, list_ports: Callable[[], list] | None) -> str:
    if list_ports is None:
        from serial.tools.list_ports import comports as list_ports
    for port in list_ports():
        if serial_number and getattr(port, "serial_number", None) == serial_number:
            return port.device
    raise DutUnavailable(f"no serial port with USB serial number {serial_number} is connected (hardware map); "
                         "check the cable or `python -m host boards scan`")
