"""The board path as far as a machine without boards allows: selection, build lookup, flash plan, skips."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from host.dut import board
from host.dut.backends import choose
from host.errors import HarnessError

ROOT = Path(__file__).resolve().parents[3]


def _port(device: str, vid: int, serial: str = "") -> SimpleNamespace:
    return SimpleNamespace(device=device, vid=vid, serial_number=serial)


def test_auto_without_boards_is_the_sim_and_says_so() -> None:
    choice = choose("auto", "esp32p4", list_ports=lambda: [_port("/dev/ttyS0", None)])
    assert choice.kind == "sim" and "SIMULATED" in choice.reason


def test_auto_finds_one_board_by_usb_id() -> None:
    choice = choose("auto", "esp32p4", list_ports=lambda: [_port("/dev/ttyACM0", 0x303A, "F4:12")])
    assert (choice.kind, choice.port) == ("board", "/dev/ttyACM0")


def test_auto_with_two_boards_asks_for_a_port() -> None:
    ports = [_port("/dev/ttyACM0", 0x303A), _port("/dev/ttyUSB0", 0x10C4)]
    with pytest.raises(HarnessError, match="pin one with --port"):
        choose("auto", "esp32p4", list_ports=lambda: ports)


def test_require_board_without_board_is_an_error() -> None:
    with pytest.raises(HarnessError, match="no esp32p4 board found"):
        choose("auto", "esp32p4", require_board=True, list_ports=lambda: [])


@pytest.mark.parametrize("kind, target, message", [
    ("qemu", "esp32p4", "does not support esp32p4"),
    ("espemu", "esp32p4", "needs `esp-emu` on PATH"),
    ("qemu", "esp32s3", "qemu-system-xtensa"),
    ("sim", "esp32c3", "does not support esp32c3"),
])
def test_emulators_name_what_is_missing(kind: str, target: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        choose(kind, target, list_ports=lambda: [])


def test_require_board_fails_the_session_fast(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/hil", "--target", "esp32p4", "--require-board",
                           "-p", "no:cacheprovider", "--report-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "no esp32p4 board found" in proc.stderr + proc.stdout


def _partition_table(entries: list[tuple[str, int, int, int, int]]) -> bytes:
    data = b"".join(struct.pack("<HBBII16sI", board.PARTITION_MAGIC, t, st, off, size, label.encode(), 0)
                    for label, t, st, off, size in entries)
    return data + b"\xff" * 32


def _fake_build(root: Path, model_size: int = 0x400000) -> Path:
    build = root / "build_esp32p4_uart"
    (build / "bootloader").mkdir(parents=True)
    (build / "partition_table").mkdir()
    (build / "bootloader" / "bootloader.bin").write_bytes(b"boot")
    (build / "hil_app.bin").write_bytes(b"app")
    (build / "partition_table" / "partition-table.bin").write_bytes(_partition_table([
        ("nvs", 1, 2, 0x9000, 0x6000), ("factory", 0, 0, 0x10000, 0x300000), ("model", 1, 0x80, 0x310000, model_size),
    ]))
    (build / "flasher_args.json").write_text(json.dumps({
        "write_flash_args": ["--flash_mode", "dio", "--flash_size", "16MB", "--flash_freq", "80m"],
        "flash_files": {"0x2000": "bootloader/bootloader.bin", "0x8000": "partition_table/partition-table.bin",
                        "0x10000": "hil_app.bin"},
        "extra_esptool_args": {"chip": "esp32p4", "before": "default_reset", "after": "hard_reset"},
    }))
    return build


def test_flash_plan_puts_the_model_image_at_the_model_partition(tmp_path: Path) -> None:
    build = _fake_build(tmp_path)
    image = tmp_path / "model.bin"
    image.write_bytes(b"PDL3" + bytes(100))
    plan = board.flash_plan(build, image)
    assert [hex(r.offset) for r in plan.regions] == ["0x2000", "0x8000", "0x10000", "0x310000"]
    args = plan.esptool_args("/dev/ttyACM0", 921600)
    assert args[:4] == ["--chip", "esp32p4", "--port", "/dev/ttyACM0"]
    assert args[args.index("write-flash") + 1:][:6] == ["--flash_mode", "dio", "--flash_size", "16MB", "--flash_freq", "80m"]
    assert args[-2:] == ["0x310000", str(image)]


def test_only_changed_regions_are_reflashed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    build = _fake_build(tmp_path)
    image = tmp_path / "model.bin"
    image.write_bytes(b"one")
    plan = board.flash_plan(build, image)
    assert len(board.regions_to_flash(plan, "/dev/ttyACM0")) == 4
    board.record_flash(plan, "/dev/ttyACM0")
    assert board.regions_to_flash(plan, "/dev/ttyACM0") == ()
    assert len(board.regions_to_flash(plan, "/dev/ttyACM1")) == 4  # another board knows nothing
    image.write_bytes(b"two")
    changed = board.regions_to_flash(board.flash_plan(build, image), "/dev/ttyACM0")
    assert [hex(r.offset) for r in changed] == ["0x310000"]


def test_model_too_large_for_its_partition(tmp_path: Path) -> None:
    build = _fake_build(tmp_path, model_size=16)
    image = tmp_path / "model.bin"
    image.write_bytes(bytes(32))
    with pytest.raises(HarnessError, match="does not fit"):
        board.flash_plan(build, image)


def test_missing_build_skips_with_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match=r"idf.py -B build_esp32p4_uart set-target esp32p4 build"):
        board.find_build("esp32p4", app_dir=tmp_path)
