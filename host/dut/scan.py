"""Find the boards connected to this machine and write them as a hardware map (`python -m host boards scan`).

Serial ports come from pyserial's `list_ports`; a port whose USB vendor id is Espressif's own USB-Serial-JTAG
or a dev-kit USB-UART bridge (host.dut.select.BOARD_USB_VIDS) is probed with esptool's Python API:
`esptool.cmds.detect_chip` (the ROM loader, entered with the usual DTR/RTS or USB-Serial-JTAG reset), then
`get_chip_description()`, `get_chip_revision()` (major*100+minor, the hardware map's `revision`) and
`read_mac("BASE_MAC")`, and finally `reset_chip(esp, "hard-reset")` so the board runs its app again. A port
esptool cannot talk to is reported with the reason, not dropped and not fatal.

Both sides are injectable (`list_ports`, `open_chip`), so the scan is tested with fakes; nothing here needs a
board or pytest.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

from host.dut.select import BOARD_USB_VIDS

CONNECT_ATTEMPTS = 3
BY_ID = Path("/dev/serial/by-id")


@dataclass
class ScannedPort:
    """One serial port: what the USB side says, and what the chip said (or why it did not)."""

    port: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    usb: str = ""  # the USB id's owner (BOARD_USB_VIDS) and description
    by_id: str | None = None  # the stable /dev/serial/by-id/ name of the port, when there is one
    chip: str | None = None  # the harness's target name: esp32p4, esp32s3, ...
    chip_description: str | None = None  # esptool's, e.g. "ESP32-P4 (revision v1.0)"
    revision: int | None = None  # major*100+minor
    mac: str | None = None
    error: str | None = None  # why the chip could not be read

    @property
    def ok(self) -> bool:
        return self.error is None and self.chip is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScanResult:
    boards: list[ScannedPort]  # ports with a board USB id: probed (ok or with the error)
    ignored: list[tuple[str, str]]  # (port, why it was not probed)

    def to_json(self) -> dict[str, Any]:
        return {"boards": [b.to_json() for b in self.boards],
                "ignored": [{"port": p, "reason": r} for p, r in self.ignored]}


def target_name(chip_name: str) -> str:
    """esptool's CHIP_NAME ("ESP32-P4") as the harness names targets ("esp32p4")."""
    return chip_name.lower().replace("-", "").replace(" ", "")


@contextlib.contextmanager
def esptool_chip(port: str, baud: int = 115200, attempts: int = CONNECT_ATTEMPTS) -> Iterator[Any]:
    """The chip behind `port` in its ROM loader (esptool's ESPLoader); on exit it is reset into its app and the
    port is closed, also when reading failed."""
    from esptool.cmds import detect_chip, reset_chip

    esp = detect_chip(port, baud=baud, connect_mode="default-reset", connect_attempts=attempts)
    try:
        yield esp
    finally:
        try:
            reset_chip(esp, "hard-reset")
        finally:
            esp._port.close()  # esptool's own teardown does the same (it has no public close)


def read_chip(esp: Any) -> dict[str, Any]:
    """Chip, description, revision and MAC from a connected ESPLoader (or a fake with the same methods)."""
    mac = esp.read_mac("BASE_MAC")
    return {"chip": target_name(esp.CHIP_NAME), "chip_description": esp.get_chip_description(),
            "revision": int(esp.get_chip_revision()), "mac": ":".join(f"{b:02x}" for b in mac) if mac else None}


def _by_id(device: str, by_id_dir: Path = BY_ID) -> str | None:
    try:
        target = os.path.realpath(device)
        for link in sorted(by_id_dir.iterdir()):
            if os.path.realpath(link) == target:
                return str(link)
    except OSError:
        pass
    return None


def scan(list_ports: Callable[[], list] | None = None,
         open_chip: Callable[[str], ContextManager[Any]] | None = None,
         ports: list[str] | None = None, by_id_dir: Path = BY_ID) -> ScanResult:
    """Probe every port with a board USB id (or exactly `ports`, e.g. an rfc2217:// URL); never raises for a port."""
    if list_ports is None:
        from serial.tools.list_ports import comports as list_ports
    open_chip = open_chip or esptool_chip
    boards: list[ScannedPort] = []
    ignored: list[tuple[str, str]] = []
    if ports:
        candidates = [ScannedPort(port=p) for p in ports]
    else:
        candidates = []
        for info in sorted(list_ports(), key=lambda i: i.device):
            vid = getattr(info, "vid", None)
            if vid not in BOARD_USB_VIDS:
                why = f"USB id {vid:04x}:{getattr(info, 'pid', 0) or 0:04x}" if vid is not None else "no USB id"
                ignored.append((info.device, f"not an Espressif or dev-kit USB-UART port ({why})"))
                continue
            description = getattr(info, "description", "") or ""
            candidates.append(ScannedPort(
                port=info.device, vid=vid, pid=getattr(info, "pid", None),
                serial_number=getattr(info, "serial_number", None) or None,
                usb=f"{BOARD_USB_VIDS[vid]}" + (f" ({description})" if description and description != "n/a" else ""),
                by_id=_by_id(info.device, by_id_dir)))
    for found in candidates:
        try:
            with open_chip(found.port) as esp:
                for key, value in read_chip(esp).items():
                    setattr(found, key, value)
        except Exception as exc:  # esptool's FatalError, a serial error, a port held by another program, ...
            text = " ".join(str(exc).split()) or type(exc).__name__
            found.error = f"{type(exc).__name__}: {text}"
        boards.append(found)
    return ScanResult(boards, ignored)


def hardware_map(result: ScanResult) -> dict[str, Any]:
    """The hardware map (host/dut/hardware_map.py's format) of the boards that answered.

    An entry names its board by USB serial number when that number is unique among the scanned ports (it follows
    the board to any USB socket), else by its /dev/serial/by-id/ path, else by the port."""
    ok = [b for b in result.boards if b.ok]
    serials = [b.serial_number for b in ok if b.serial_number]
    entries, ids = [], set()
    for board in ok:
        suffix = (board.mac or "").replace(":", "")[-6:] or Path(board.port).name
        name = base = f"{board.chip}-{suffix}"
        n = 2
        while name in ids:
            name, n = f"{base}-{n}", n + 1
        ids.add(name)
        entry: dict[str, Any] = {"id": name, "kind": "board", "target": board.chip, "revision": board.revision}
        if board.serial_number and serials.count(board.serial_number) == 1:
            entry["serial_number"] = board.serial_number
        else:
            entry["port"] = board.by_id or board.port
        entries.append(entry)
    return {"boards": entries}


def map_text(result: ScanResult) -> str:
    """The map as YAML, with a comment per board (port, chip, MAC) and per port that could not be read."""
    import yaml

    lines = ["# written by `python -m host boards scan`; edit ids freely (they are the lock names)."]
    for board in result.boards:
        if board.ok:
            lines.append(f"# {board.port}: {board.chip_description}, MAC {board.mac}, {board.usb or 'given port'}")
        else:
            lines.append(f"# {board.port}: NOT READ ({board.error})")
    doc = hardware_map(result)
    if not doc["boards"]:
        lines.append("# no board answered: this map is empty and --hardware-map would refuse it")
        return "\n".join(lines) + "\nboards: []\n"
    return "\n".join(lines) + "\n" + yaml.safe_dump(doc, sort_keys=False)
