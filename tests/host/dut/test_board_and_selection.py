"""The board path as far as a machine without boards allows: selection, build lookup, flash plan, skips."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from host.dut import board
from host.dut.backend import DutUnavailable
from host.dut.select import BACKENDS, choose
from host.errors import HarnessError

ROOT = Path(__file__).resolve().parents[3]


def _port(device: str, vid: int, serial: str = "") -> SimpleNamespace:
    return SimpleNamespace(device=device, vid=vid, serial_number=serial)


def test_auto_without_boards_is_the_sim_and_says_so() -> None:
    choice = choose("auto", "esp32p4", list_ports=lambda: [_port("/dev/ttyS0", None)], environ={})
    assert choice.kind == "sim" and "SIMULATED" in choice.reason


def test_auto_on_ci_without_a_board_is_an_error_naming_dut_sim() -> None:
    with pytest.raises(HarnessError, match="pass --dut sim"):
        choose("auto", "esp32p4", list_ports=lambda: [], environ={"CI": "true"})
    assert choose("sim", "esp32p4", list_ports=lambda: [], environ={"CI": "true"}).kind == "sim"


def test_auto_finds_one_board_by_usb_id() -> None:
    choice = choose("auto", "esp32p4", list_ports=lambda: [_port("/dev/ttyACM0", 0x303A, "F4:12")], environ={})
    assert (choice.kind, choice.port) == ("board", "/dev/ttyACM0")


def test_auto_with_two_boards_asks_for_a_port() -> None:
    ports = [_port("/dev/ttyACM0", 0x303A), _port("/dev/ttyUSB0", 0x10C4)]
    with pytest.raises(HarnessError, match="pin one with --port"):
        choose("auto", "esp32p4", list_ports=lambda: ports, environ={})


def test_require_board_without_board_is_an_error() -> None:
    with pytest.raises(HarnessError, match="no esp32p4 board found"):
        choose("auto", "esp32p4", require_board=True, list_ports=lambda: [], environ={})


@pytest.mark.parametrize("kind, target, message", [
    ("espemu", "esp32p4", "unknown --dut 'espemu'"),
    ("sim", "esp32c3", "does not support esp32c3"),
    ("board", "esp32p4", "no esp32p4 board found"),
])
def test_kinds_that_cannot_run_are_refused_by_name(kind: str, target: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        choose(kind, target, list_ports=lambda: [], environ={})


def test_qemu_without_qemu_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.delitem(BACKENDS, "qemu", raising=False)
    with pytest.raises(HarnessError, match=re.escape("--dut qemu cannot run here: Espressif's QEMU")) as caught:
        choose("qemu", "esp32s3", list_ports=lambda: [], environ={})
    assert "python $IDF_PATH/tools/idf_tools.py install qemu-xtensa" in str(caught.value)


def test_qemu_on_path_is_a_kind_for_esp32s3_only(monkeypatch) -> None:
    from host.dut.qemu import QemuBackend

    monkeypatch.setitem(BACKENDS, "qemu", QemuBackend)
    assert choose("qemu", "esp32s3", list_ports=lambda: [], environ={"CI": "1"}).kind == "qemu"
    with pytest.raises(HarnessError, match="does not support esp32p4"):
        choose("qemu", "esp32p4", list_ports=lambda: [], environ={})
    with pytest.raises(HarnessError, match="--require-board contradicts --dut qemu"):
        choose("qemu", "esp32s3", require_board=True, list_ports=lambda: [], environ={})


@pytest.mark.parametrize("on_path", [True, False])
def test_the_backend_table_offers_qemu_only_when_it_is_on_path(tmp_path: Path, on_path: bool) -> None:
    fake = tmp_path / "qemu-system-xtensa"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    path = os.pathsep.join(([str(tmp_path)] if on_path else [])
                           + [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / fake.name).exists()])
    proc = subprocess.run([sys.executable, "-c", "from host.dut.select import BACKENDS, CHOICES; print(*CHOICES)"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ, PATH=path))
    assert proc.stdout.split() == (["auto", "board", "sim", "qemu"] if on_path else ["auto", "board", "sim"]), \
        proc.stderr


def test_every_backend_has_the_same_operations() -> None:
    for kind, backend in BACKENDS.items():
        assert backend.kind == kind and backend.targets
        for operation in ("prepare", "open", "reset", "provenance"):
            assert callable(getattr(backend, operation)), (kind, operation)
        assert isinstance(backend.timed, bool) and backend.latency_label


def test_require_board_fails_the_session_fast(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/hil", "--target", "esp32p4", "--require-board",
                           "-p", "no:cacheprovider", "--report-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "no esp32p4 board found" in proc.stderr + proc.stdout


def test_missing_build_and_idf_skips_naming_both(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("IDF_PATH", raising=False)
    with pytest.raises(DutUnavailable, match=r"no firmware build for esp32p4/uart .*IDF_PATH is not set"):
        board.locate_build("esp32p4", "uart", firmware_dir=tmp_path)


def test_existing_ci_build_is_used_without_idf(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("IDF_PATH", raising=False)
    build = tmp_path / "build_esp32p4_uart"
    (build / "bootloader").mkdir(parents=True)
    (build / "bootloader" / "bootloader.bin").write_bytes(b"boot")
    (build / "flasher_args.json").write_text(json.dumps({
        "flash_files": {"0x2000": "bootloader/bootloader.bin"}, "extra_esptool_args": {"chip": "esp32p4"}}))
    (build / "config").mkdir()
    (build / "config" / "sdkconfig.json").write_text(json.dumps({"ESP_CONSOLE_UART_BAUDRATE": 2000000}))
    found = board.locate_build("esp32p4", "uart", firmware_dir=tmp_path)
    assert found.path == build and board.console_baud(found) == 2000000
