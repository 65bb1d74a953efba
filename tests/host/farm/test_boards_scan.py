"""`python -m host boards scan`: serial ports and esptool faked; the map it writes is one load_map accepts."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
import tty
from pathlib import Path
from types import SimpleNamespace

import yaml

from host.dut.hardware_map import load_map
from host.dut.scan import hardware_map, map_text, scan

ROOT = Path(__file__).resolve().parents[3]


def _port(device: str, vid: int | None, pid: int | None = None, serial: str | None = None,
          description: str = "") -> SimpleNamespace:
    return SimpleNamespace(device=device, vid=vid, pid=pid, serial_number=serial, description=description)


class FakeChip:
    """What host.dut.scan reads from esptool's ESPLoader, with the values of an ESP32-P4 v1.0."""

    def __init__(self, name: str = "ESP32-P4", major: int = 1, minor: int = 0,
                 mac: tuple = (0xF4, 0x12, 0xFA, 0x4C, 0x81, 0x20)) -> None:
        self.CHIP_NAME, self.major, self.minor, self.mac = name, major, minor, mac
        self.reset = False

    def get_chip_description(self) -> str:
        return f"{self.CHIP_NAME} (revision v{self.major}.{self.minor})"

    def get_chip_revision(self) -> int:
        return self.major * 100 + self.minor

    def read_mac(self, mac_type: str = "BASE_MAC"):
        return self.mac


def _opener(chips: dict[str, object]):
    """open_chip for scan(): a FakeChip per port, or an exception to raise for it."""
    opened: list[str] = []

    @contextlib.contextmanager
    def open_chip(port: str):
        opened.append(port)
        chip = chips[port]
        if isinstance(chip, Exception):
            raise chip
        try:
            yield chip
        finally:
            chip.reset = True  # the real one resets the chip into its app here

    open_chip.opened = opened
    return open_chip


def test_a_port_that_is_not_a_board_is_ignored_and_not_probed() -> None:
    opener = _opener({})
    result = scan(list_ports=lambda: [_port("/dev/ttyS0", None), _port("/dev/ttyUSB3", 0x067B, 0x2303)],
                  open_chip=opener)
    assert result.boards == [] and opener.opened == []
    assert [p for p, _ in result.ignored] == ["/dev/ttyS0", "/dev/ttyUSB3"]
    assert "067b:2303" in result.ignored[1][1]


def test_one_board_becomes_a_map_entry_that_load_map_accepts(tmp_path: Path) -> None:
    chip = FakeChip()
    result = scan(list_ports=lambda: [_port("/dev/ttyACM0", 0x303A, 0x1001, "F4:12:FA:4C:81:20", "USB JTAG/serial"),
                                      _port("/dev/ttyS0", None)],
                  open_chip=_opener({"/dev/ttyACM0": chip}), by_id_dir=tmp_path / "none")
    (board,) = result.boards
    assert (board.chip, board.revision, board.mac) == ("esp32p4", 100, "f4:12:fa:4c:81:20")
    assert board.chip_description == "ESP32-P4 (revision v1.0)" and board.ok and chip.reset
    assert "Espressif USB-Serial-JTAG" in board.usb
    path = tmp_path / "boards.yaml"
    path.write_text(map_text(result))
    (entry,) = load_map(path)
    assert (entry.id, entry.kind, entry.target, entry.revision, entry.serial_number, entry.port) == (
        "esp32p4-4c8120", "board", "esp32p4", 100, "F4:12:FA:4C:81:20", None)


def test_esptool_failing_on_a_port_reports_it_with_the_reason(tmp_path: Path) -> None:
    class FatalError(RuntimeError):
        pass

    ports = [_port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001"), _port("/dev/ttyUSB1", 0x1A86, 0x7523),
             _port("/dev/ttyUSB2", 0x1A86, 0x7523)]
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    result = scan(list_ports=lambda: ports, by_id_dir=by_id, open_chip=_opener({
        "/dev/ttyUSB0": FatalError("Failed to connect to Espressif device: No serial data received."),
        "/dev/ttyUSB1": FakeChip("ESP32-S3", 0, 2, (1, 2, 3, 4, 5, 6)),
        "/dev/ttyUSB2": FakeChip("ESP32-S3", 0, 2, (1, 2, 3, 4, 5, 7))}))
    bad, good1, good2 = result.boards
    assert not bad.ok and bad.error == "FatalError: Failed to connect to Espressif device: No serial data received."
    assert good1.ok and good2.ok
    doc = hardware_map(result)
    assert [e["id"] for e in doc["boards"]] == ["esp32s3-040506", "esp32s3-040507"]
    assert [e.get("port") for e in doc["boards"]] == ["/dev/ttyUSB1", "/dev/ttyUSB2"]  # CH340: no serial number
    text = map_text(result)
    assert "# /dev/ttyUSB0: NOT READ (FatalError: Failed to connect" in text
    path = tmp_path / "boards.yaml"
    path.write_text(text)
    assert [e.revision for e in load_map(path)] == [2, 2]


def test_duplicate_serial_numbers_fall_back_to_the_port() -> None:
    ports = [_port("/dev/ttyUSB0", 0x10C4, 1, "0001"), _port("/dev/ttyUSB1", 0x10C4, 1, "0001")]
    result = scan(list_ports=lambda: ports, open_chip=_opener({
        "/dev/ttyUSB0": FakeChip(mac=(0, 0, 0, 0, 0, 1)), "/dev/ttyUSB1": FakeChip(mac=(0, 0, 0, 0, 0, 2))}))
    assert [("serial_number" in e, e.get("port")) for e in hardware_map(result)["boards"]] == [
        (False, "/dev/ttyUSB0"), (False, "/dev/ttyUSB1")]


def test_cli_on_a_silent_port_reports_it_through_real_esptool(tmp_path: Path) -> None:
    """esptool 5.6.0 itself on a pty nobody answers: the port is reported with esptool's reason, exit 1, and the
    JSON on stdout stays parseable (esptool's progress goes to stderr)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    try:
        out = tmp_path / "boards.yaml"
        proc = subprocess.run([sys.executable, "-m", "host", "boards", "scan", "--port", os.ttyname(slave),
                               "--attempts", "1", "--json", f"--out={out}"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    (board,) = report["boards"]
    assert board["chip"] is None and "Failed to connect" in board["error"]
    assert report["map"] == {"boards": []}
    assert yaml.safe_load(out.read_text()) == {"boards": []} and "NOT READ" in out.read_text()


def test_cli_without_boards_lists_none() -> None:
    proc = subprocess.run([sys.executable, "-m", "host", "boards", "scan", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) >= {"boards", "ignored", "map"}
