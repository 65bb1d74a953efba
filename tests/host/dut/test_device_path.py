"""The device path without a board: the device log of a session, panic backtraces decoded against a real
(RISC-V) ELF, and the board's reset through esptool's reset classes on a port that records DTR/RTS."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from host.dut import board
from host.dut.client import DutPanic, ProtocolClient
from host.dut.devicelog import DeviceLog, attach_device_log
from host.dut.dut import Dut
from host.dut.panic import PanicDecoder, PanicDecodingClient, elf_arch, panic_text
from host.protocol import encode_line
from host.report.html import write_report

RISCV_APT = "apt-get install gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf"
GDB_APT = "apt-get install gdb-multiarch"


class ScriptedTransport:
    """A byte transport that hands out scripted chunks (one per read) and records what the host writes;
    an OSError in the script is raised by that read (a port that vanished)."""

    def __init__(self, chunks: list, port=None) -> None:
        self.chunks = list(chunks)
        self.written: list[bytes] = []
        self.reopened = 0
        self.port = port

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def read(self, timeout: float) -> bytes:
        if not self.chunks:
            time.sleep(min(timeout, 0.01))
            return b""
        chunk = self.chunks.pop(0)
        if isinstance(chunk, Exception):
            raise chunk
        return chunk

    def reopen(self, timeout: float) -> None:
        self.reopened += 1

    def close(self) -> None:
        pass


def _record(body: dict) -> bytes:
    return encode_line(body)


def _dut(client: ProtocolClient, kind: str = "board") -> Dut:
    return Dut(kind, client, "esp32p4", "/dev/ttyFAKE", True, "measured")


# ---------------------------------------------------------------------------------------------- device log

def test_device_log_has_the_boot_output_then_every_line_as_it_arrives(tmp_path: Path) -> None:
    transport = ScriptedTransport([b"ESP-ROM:esp32p4\r\nI (25) boot: ESP-IDF v5.5.1\r\n",
                                   _record({"t": "boot", "reason": "poweron"})])
    client = ProtocolClient(transport, timeout_s=2.0)
    client.wait_for_boot(2.0)
    dut = _dut(client)
    log = attach_device_log(dut, tmp_path / "gw0", tmp_path)
    assert log.link == "gw0/device.log"
    transport.chunks += [b"W (900) hil: heap low\n", _record({"t": "info", "id": 1, "ok": True}), b"tail line\n"]
    client.call("info", timeout_s=2.0)
    client._drain(0.05)
    text = (tmp_path / "gw0" / "device.log").read_text()  # before close: every line is flushed as it arrives
    lines = text.splitlines()
    assert lines[0].startswith("# yolo11-hil device log: board DUT")
    order = [next(i for i, line in enumerate(lines) if needle in line)
             for needle in ("ESP-ROM:esp32p4", "boot: ESP-IDF v5.5.1", "W (900) hil: heap low", "tail line")]
    assert order == sorted(order)
    assert "@HIL" not in text and '"t":"info"' not in text  # protocol records are not device output
    assert re.match(r"\d\d:\d\d:\d\d\.\d{3} W \(900\) hil: heap low$", lines[order[2]])
    dut.close()
    assert (tmp_path / "gw0" / "device.log").read_text().rstrip().endswith("[host] the DUT was closed")


def test_device_log_is_bounded_and_says_what_it_dropped(tmp_path: Path) -> None:
    log = DeviceLog(tmp_path / "device.log", max_bytes=2000)
    for i in range(500):
        log.write(f"line {i:04d} " + "x" * 40)
    size_before_close = (tmp_path / "device.log").stat().st_size
    assert size_before_close < 2000 + 400  # the limit plus its one-line note
    log.close()
    text = (tmp_path / "device.log").read_text()
    assert "reached its limit of 2000 bytes" in text
    dropped = int(re.search(r"truncated: (\d+) lines", text).group(1))
    kept = len(re.findall(r"line \d{4} ", text.split("--- truncated")[0]))
    assert kept + dropped == 500
    assert "line 0499 " in text.split("--- truncated")[1]  # the last dropped lines are kept at the end


def test_device_log_of_a_simulated_dut(open_tiny_sim, tmp_path: Path) -> None:
    dut = open_tiny_sim()
    log = attach_device_log(dut, tmp_path)
    dut.info()
    dut.close()
    text = (tmp_path / "device.log").read_text()
    assert text.startswith("# yolo11-hil device log: sim DUT") and "[host] the DUT was closed" in text
    assert log.error is None


def test_report_links_the_device_logs(tmp_path: Path) -> None:
    (tmp_path / "gw0").mkdir()
    (tmp_path / "gw0" / "device.log").write_text("x\n")
    (tmp_path / "gw1").mkdir()
    (tmp_path / "gw1" / "device.log").write_text("y\n")
    html = write_report(tmp_path, {"device_log": "gw1/device.log", "latency_label": "measured"}, []).read_text()
    assert "<a href='gw1/device.log'>" in html and "<a href='gw0/device.log'>" in html
    worker = write_report(tmp_path / "gw0", {"device_log": "gw0/device.log", "latency_label": "measured"},
                          []).read_text()
    assert "<a href='device.log'>" in worker  # a worker's own report links its file beside it


# ---------------------------------------------------------------------------------------------- panics

SOURCE = """\
volatile int sink;

__attribute__((noinline)) void hil_inner_fault(int x)
{
    sink = x;
    *(volatile int *)0 = x;   /* the store access fault */
}

__attribute__((noinline)) void hil_outer_call(int x)
{
    hil_inner_fault(x + 1);
    sink = 2;
}

void _start(void)
{
    hil_outer_call(41);
    for (;;) {}
}
"""


def _function_lines(name: str) -> range:
    lines = SOURCE.splitlines()
    start = next(i for i, line in enumerate(lines, 1) if re.search(rf"\b{name}\(int x\)|\b{name}\(void\)", line))
    end = next(i for i, line in enumerate(lines, 1) if i > start and line == "}")
    return range(start, end + 1)


@pytest.fixture(scope="module")
def riscv_elf(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """A tiny rv32imac ELF (Debian's riscv64-unknown-elf toolchain) with its code at ESP32-P4 flash addresses."""
    if not shutil.which("riscv64-unknown-elf-gcc") or not shutil.which("riscv64-unknown-elf-addr2line"):
        pytest.skip(f"the RISC-V toolchain is not installed: {RISCV_APT}")
    root = tmp_path_factory.mktemp("rv")
    (root / "panic_demo.c").write_text(SOURCE)
    subprocess.run(["riscv64-unknown-elf-gcc", "-march=rv32imac", "-mabi=ilp32", "-g", "-O1", "-nostdlib",
                    "-ffreestanding", "-Wl,-Ttext=0x42000020", "-o", "yolo11_hil.elf", "panic_demo.c"],
                   cwd=root, check=True, capture_output=True, timeout=120)
    nm = subprocess.run(["riscv64-unknown-elf-nm", "yolo11_hil.elf"], cwd=root, check=True, capture_output=True,
                        text=True).stdout
    symbols = {parts[2]: int(parts[0], 16) for parts in (line.split() for line in nm.splitlines()) if len(parts) == 3}
    return root / "yolo11_hil.elf", symbols


def _riscv_panic(mepc: int, ra: int, sp: int, caller_ra: int) -> str:
    """ESP-IDF's RISC-V panic report (register dump and stack memory), as the P4 prints it."""
    return f"""Guru Meditation Error: Core  0 panic'ed (Store access fault). Exception was unhandled.

Core  0 register dump:
MEPC    : {mepc:#010x}  RA      : {ra:#010x}  SP      : {sp:#010x}  GP      : 0x42001852
TP      : 0x4ff3c160  T0      : 0x4fc0a9f8  T1      : 0x4ff3c0cc  T2      : 0xffffffff
S0/FP   : 0x00000000  S1      : 0x00000000  A0      : 0x0000002a  A1      : 0x00000000
A2      : 0x00000000  A3      : 0x00000000  A4      : 0x00000000  A5      : 0x42001000
A6      : 0x00000000  A7      : 0x0000000a  S2      : 0x00000000  S3      : 0x00000000
S4      : 0x00000000  S5      : 0x00000000  S6      : 0x00000000  S7      : 0x00000000
S8      : 0x00000000  S9      : 0x00000000  S10     : 0x00000000  S11     : 0x00000000
T3      : 0x00000000  T4      : 0x00000000  T5      : 0x00000000  T6      : 0x00000000
MSTATUS : 0x00001881  MTVEC   : 0x4ff00003  MCAUSE  : 0x00000007  MTVAL   : 0x00000000
MHARTID : 0x00000000

Stack memory:
{sp:08x}: 0x00000000 0x00000000 0x00000000 {caller_ra:#010x} 0x00000000 0x00000000 0x00000000 0x00000000
{sp + 32:08x}: 0xa5a5a5a5 0xa5a5a5a5 0xa5a5a5a5 0xa5a5a5a5 0xa5a5a5a5 0xa5a5a5a5 0xa5a5a5a5 0xa5a5a5a5

Rebooting...
"""


def _addresses(symbols: dict[str, int]) -> tuple[int, int, int]:
    """A PC inside hil_inner_fault, a return address inside hil_outer_call, one inside _start."""
    return symbols["hil_inner_fault"] + 8, symbols["hil_outer_call"] + 8, symbols["_start"] + 10


def _assert_names(message: str, function: str, elf: Path) -> None:
    match = re.search(rf"0x[0-9a-f]{{8}}: {function} at (\S+):(\d+)", message)
    assert match, f"{function} not decoded in:\n{message}"
    assert Path(match.group(1)).name == "panic_demo.c"
    assert int(match.group(2)) in _function_lines(function)


@pytest.mark.parametrize("style", ["riscv-register-dump", "backtrace-line"])
def test_a_panic_names_function_and_line(riscv_elf, style: str, tmp_path: Path) -> None:
    elf, symbols = riscv_elf
    pc, ra, caller = _addresses(symbols)
    if style == "riscv-register-dump":
        panic = _riscv_panic(pc, ra, 0x4FF3C0E0, caller)
    else:  # the Xtensa form (and RISC-V with CONFIG_ESP_SYSTEM_USE_EH_FRAME)
        panic = ("assert failed: hil_outer_call panic_demo.c:11 (x > 0)\n"
                 f"Backtrace: {pc:#010x}:0x4ff3c0e0 {ra:#010x}:0x4ff3c0f0 {caller:#010x}:0x4ff3c100\n")
    transport = ScriptedTransport([b"I (1200) hil: ready\n", panic.encode()])
    client = PanicDecodingClient(transport, PanicDecoder.for_build(elf.parent, "esp32p4"), timeout_s=5.0)
    log = attach_device_log(_dut(client), tmp_path)
    with pytest.raises(DutPanic) as caught:
        client.call("info")
    message = str(caught.value)
    assert message.startswith("the device panicked\n--- panic backtrace decoded against")
    _assert_names(message, "hil_inner_fault", elf)
    _assert_names(message, "hil_outer_call", elf)
    assert "\n--- last device output ---\n" in message  # the device's own lines still follow
    assert caught.value.decoded and caught.value.log_tail
    log.close()
    assert "[host] 0x" in (tmp_path / "device.log").read_text()  # the decoded lines are in the device log


def test_a_riscv_stack_dump_is_unwound_by_gdb(riscv_elf, tmp_path: Path, monkeypatch) -> None:
    """With `<prefix>gdb` on PATH (here Debian's gdb-multiarch under the toolchain's name), the decoder's gdb
    panic server gives the whole call chain from the stack dump, down to _start."""
    gdb = shutil.which("gdb-multiarch")
    if gdb is None:
        pytest.skip(f"no gdb for RISC-V: {GDB_APT}")
    elf, symbols = riscv_elf
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "riscv64-unknown-elf-gdb").symlink_to(gdb)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    pc, ra, caller = _addresses(symbols)
    # the return address gdb finds in hil_outer_call's frame (ra saved at sp+12 by its prologue) leads to _start
    decoder = PanicDecoder.for_elf(elf, "esp32p4")
    assert decoder.gdb
    block, lines = decoder.describe(_riscv_panic(pc, ra, 0x4FF3C0E0, caller))
    frames = [line for line in lines if line.startswith("#")]
    assert "backtrace unwound by gdb from the stack dump:" in lines
    assert [re.search(r"(\w+) \(", f).group(1) for f in frames][:2] == ["hil_inner_fault", "hil_outer_call"]
    assert any("_start" in f for f in frames)


def test_a_panic_that_cannot_be_decoded_says_why(tmp_path: Path, riscv_elf) -> None:
    elf, _ = riscv_elf
    no_tools = PanicDecoder.for_elf(elf, "esp32p4", which=lambda _: None)
    assert "riscv32-esp-elf-addr2line, riscv64-unknown-elf-addr2line" in no_tools.describe("x")[0]
    assert RISCV_APT.split()[-1] in no_tools.problem  # binutils-riscv64-unknown-elf
    missing = PanicDecoder.for_build(tmp_path, "esp32p4")
    assert f"no ELF at {tmp_path / 'yolo11_hil.elf'}" in missing.describe("x")[0]
    assert elf_arch(elf) == "riscv"


def test_a_wrong_elf_is_flagged(riscv_elf) -> None:
    elf, symbols = riscv_elf
    pc, ra, caller = _addresses(symbols)
    text = _riscv_panic(pc, ra, 0x4FF3C0E0, caller) + "\nELF file SHA256: 0123456789abcdef\n"
    block, _ = PanicDecoder.for_elf(elf, "esp32p4").describe(text)
    assert "WARNING: the device runs an ELF with SHA256 0123456789abcdef" in block


def test_panic_text_starts_at_the_last_panic() -> None:
    lines = ["Guru Meditation Error: old", "a", "b", "c", "d", "e", "f", "g",
             "I (1) boot", "abort() was called at PC 0x42000028", "Backtrace: 0x42000028:0x4ff3c0e0"]
    text = panic_text(lines)
    assert "old" not in text and text.endswith("Backtrace: 0x42000028:0x4ff3c0e0")


# ---------------------------------------------------------------------------------------------- board reset

class RecordingPort:
    """A pyserial-like port that records every DTR/RTS write with its time."""

    def __init__(self, fd: int | None = None) -> None:
        self.events: list[tuple[str, bool, float]] = []
        self._dtr = self._rts = True  # pyserial asserts both on open
        self.name = self.port = "/dev/ttyFAKE"
        self._fd = fd

    def _record(self, line: str, value: bool) -> None:
        self.events.append((line, value, time.monotonic()))

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = value
        self._record("DTR", value)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = value
        self._record("RTS", value)

    def setDTR(self, value: bool) -> None:  # noqa: N802 (pyserial's name, which esptool calls)
        self.dtr = value

    def setRTS(self, value: bool) -> None:  # noqa: N802
        self.rts = value

    def isOpen(self) -> bool:  # noqa: N802
        return True

    def fileno(self) -> int:
        if self._fd is None:
            raise OSError(25, "not a tty")
        return self._fd

    def sequence(self) -> list[tuple[str, bool]]:
        return [(line, value) for line, value, _ in self.events]

    def held(self) -> float:
        """Seconds RTS (EN low) was held asserted."""
        on = next(t for line, value, t in self.events if line == "RTS" and value)
        off = next(t for line, value, t in self.events if line == "RTS" and not value and t >= on)
        return off - on


def test_bridge_reset_is_esptools_hard_reset() -> None:
    port = RecordingPort()
    board.hard_reset(port, 0x1A86, 0x7523)  # a CH340 bridge
    # DTR released (IO0 high: the app boots, not the ROM downloader); EN pulsed by RTS; esptool re-writes DTR
    # after each RTS change (the Windows usbser.sys workaround), and never pulls IO0 low
    assert port.sequence() == [("DTR", False), ("RTS", True), ("DTR", False), ("RTS", False), ("DTR", False)]
    assert 0.09 <= port.held() < 0.19


def test_usb_serial_jtag_reset_holds_longer_for_the_usb_peripheral() -> None:
    port = RecordingPort()
    started = time.monotonic()
    board.hard_reset(port, 0x303A, 0x1001)
    assert port.sequence() == [("DTR", False), ("RTS", True), ("DTR", False), ("RTS", False), ("DTR", False)]
    assert port.held() >= 0.19 and time.monotonic() - started >= 0.39  # HardReset(uses_usb=True): 0.2 + 0.2


def test_cp2102c_reset_uses_the_flow_control_variant() -> None:
    master, slave = os.openpty()
    try:
        port = RecordingPort(fd=slave)
        board.hard_reset(port, 0x10C4, 0xEA64)
    finally:
        os.close(master)
        os.close(slave)
    assert port.sequence() == [("DTR", False), ("DTR", False), ("RTS", True), ("DTR", False), ("DTR", True),
                               ("RTS", False), ("DTR", True)]


def test_usb_ids_follow_by_id_links(tmp_path: Path) -> None:
    (tmp_path / "ttyACM0").write_text("")
    (tmp_path / "usb-Espressif_USB_JTAG").symlink_to(tmp_path / "ttyACM0")
    ports = [SimpleNamespace(device=str(tmp_path / "ttyUSB0"), vid=0x10C4, pid=0xEA60),
             SimpleNamespace(device=str(tmp_path / "ttyACM0"), vid=0x303A, pid=0x1001)]
    assert board.usb_ids(str(tmp_path / "usb-Espressif_USB_JTAG"), lambda: ports) == (0x303A, 0x1001)
    assert board.usb_ids("/dev/ttyS9", lambda: ports) == (None, None)
    assert board.usb_link(0x303A, 0x1001) == "USB-Serial-JTAG"
    assert board.usb_link(None, None) == "USB-UART bridge (USB id unknown)"


def test_board_reset_waits_for_the_boot_record_across_a_usb_reenumeration() -> None:
    port = RecordingPort()
    boot = {"t": "boot", "reason": "external"}
    transport = ScriptedTransport([OSError(5, "device disconnected"), b"ESP-ROM:esp32p4\n", _record(boot)], port)
    client = ProtocolClient(transport, timeout_s=5.0)
    backend = board.BoardBackend.__new__(board.BoardBackend)
    backend.usb = (0x303A, 0x1001)
    assert backend.reset(_dut(client)) == boot
    assert transport.reopened == 1 and port.sequence()[:2] == [("DTR", False), ("RTS", True)]
