"""Panic backtraces decoded against the firmware's ELF: the function and file:line of every code address.

When the device panics, `ProtocolClient` raises DutPanic with the last device lines. `PanicDecodingClient`
(what the board and QEMU kinds open) adds to that message what esp-idf-panic-decoder makes of the panic
text, as idf.py monitor and pytest-embedded-idf use it:

* every address in the panic text that lies in an executable section of the ELF (an Xtensa
  `Backtrace: 0x4200abcd:0x3fc9...` line, a RISC-V register dump's `MEPC`/`RA`, an `abort()` PC) through
  `<toolchain>addr2line -fiaC` (`PcAddressDecoder`), one line per address with the functions inlined there;
* on RISC-V, where the chip prints registers and a stack dump instead of a backtrace, also the backtrace gdb
  unwinds from that dump through the decoder's gdb panic server (`PanicOutputDecoder`), when
  `<toolchain>gdb` is on PATH (ESP-IDF's riscv32-esp-elf-gdb).

The toolchain is the build's own (riscv32-esp-elf-, xtensa-esp32s3-elf- / xtensa-esp-elf-, on PATH once
ESP-IDF is exported); for RISC-V, Debian's riscv64-unknown-elf binutils read the rv32 ELF as well. A panic that
cannot be decoded says why (no ELF in the build directory, no addr2line on PATH) instead of staying silent,
and the decoded lines also go to the device log.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from host.dut.client import PANIC_PATTERNS, DutPanic, ProtocolClient, Transport

PROJECT = "yolo11_hil"
EM_XTENSA, EM_RISCV = 94, 243
MAX_ADDRESSES = 64

#: panic text of a fresh panic: the first line of its report
PANIC_START = re.compile(r"Guru Meditation Error|abort\(\) was called|Stack smashing|assert failed|\*\*\* PANIC|"
                         r"\*\*\*ERROR\*\*\*")
#: a line of a RISC-V "Stack memory:" dump (data words, not code: left to gdb)
STACK_LINE = re.compile(r"^\s*[0-9a-fA-F]{8}:\s+0x")
ELF_SHA = re.compile(r"ELF file SHA256:\s*([0-9a-fA-F]+)")
TAIL_MARK = "\n--- last device output ---\n"  # how DutError appends the log tail to its message


def toolchain_prefixes(arch: str, target: str) -> tuple[str, ...]:
    if arch == "riscv":
        return ("riscv32-esp-elf-", "riscv64-unknown-elf-")
    return (f"xtensa-{target}-elf-", "xtensa-esp-elf-")


def install_hint(arch: str) -> str:
    hint = "export ESP-IDF (`. $IDF_PATH/export.sh`) so its toolchain is on PATH"
    if arch == "riscv":
        hint += ", or `apt-get install binutils-riscv64-unknown-elf`"
    return hint


def elf_arch(path: Path) -> str | None:
    """'riscv' or 'xtensa' from the ELF header's machine field; None for anything else."""
    with open(path, "rb") as fh:
        head = fh.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return {EM_RISCV: "riscv", EM_XTENSA: "xtensa"}.get(machine)


def elf_of_build(build_path: Path) -> Path:
    """The app ELF of an ESP-IDF build directory (project_description.json names it; else <project>.elf)."""
    desc = build_path / "project_description.json"
    try:
        name = json.loads(desc.read_text()).get("app_elf")
    except (OSError, ValueError, AttributeError):
        name = None
    return build_path / (name or f"{PROJECT}.elf")


def panic_text(lines: list[str]) -> str:
    """The report of the last panic in `lines`: from its first line (a few lines of context before it) to the end."""
    start = None
    for index in range(len(lines) - 1, -1, -1):
        if PANIC_START.search(lines[index]):
            start = index
            break
    if start is None:
        start = next((i for i in range(len(lines) - 1, -1, -1)
                      if PANIC_PATTERNS.search(lines[i].encode("utf-8", "replace"))), 0)
    return "\n".join(lines[max(0, start - 5):])


@dataclass
class PanicDecoder:
    """Decodes panic text against one ELF; `problem` says why it cannot (then `decode` gives nothing)."""

    elf: Path
    target: str
    prefix: str | None = None  # the toolchain prefix whose addr2line is on PATH
    gdb: bool = False  # `<prefix>gdb` is on PATH too (RISC-V backtraces from the stack dump)
    problem: str = ""
    arch: str | None = None

    @classmethod
    def for_elf(cls, elf: Path, target: str, which: Callable[[str], str | None] = shutil.which) -> "PanicDecoder":
        elf = Path(elf)
        if not elf.is_file():
            return cls(elf, target, problem=f"no ELF at {elf} (a build directory from CI must include "
                                            f"{elf.name} for panics to be decoded)")
        arch = elf_arch(elf)
        if arch is None:
            return cls(elf, target, problem=f"{elf} is not an Xtensa or RISC-V ELF")
        prefixes = toolchain_prefixes(arch, target)
        prefix = next((p for p in prefixes if which(p + "addr2line")), None)
        if prefix is None:
            return cls(elf, target, arch=arch, problem=f"none of {', '.join(p + 'addr2line' for p in prefixes)} is "
                                                       f"on PATH: {install_hint(arch)}")
        return cls(elf, target, prefix, gdb=arch == "riscv" and which(prefix + "gdb") is not None, arch=arch)

    @classmethod
    def for_build(cls, build_path: Path, target: str) -> "PanicDecoder":
        return cls.for_elf(elf_of_build(build_path), target)

    def decode(self, text: str) -> list[str]:
        """One line per code address of the ELF in `text` ('0x42001234: func at file.c:12', inlined callers
        indented), then gdb's backtrace from a RISC-V stack dump when gdb is at hand."""
        if self.problem or self.prefix is None:
            return []
        from esp_idf_panic_decoder import PcAddressDecoder

        code_text = "\n".join(line for line in text.splitlines() if not STACK_LINE.match(line))
        out: list[str] = []
        seen: set[str] = set()
        for address, trace in PcAddressDecoder(self.prefix, str(self.elf)).translate_addresses(code_text):
            if address in seen:
                continue
            seen.add(address)
            if len(seen) > MAX_ADDRESSES:
                out.append(f"(more addresses not decoded: the first {MAX_ADDRESSES} are above)")
                break
            first, *inlined = trace
            out.append(f"{address}: {_location(first)}")
            out += [f"    (inlined by) {_location(t)}" for t in inlined]
        if self.gdb and "register dump:" in text and "Stack memory:" in text:
            out += self._gdb_backtrace(text)
        return out

    def describe(self, text: str) -> tuple[str, list[str]]:
        """The block a failure message gets, and the decoded lines alone."""
        if self.problem:
            return f"--- panic backtrace not decoded: {self.problem} ---", []
        try:
            lines = self.decode(text)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            return f"--- panic backtrace not decoded: {type(exc).__name__}: {exc} ---", []
        warning = self._elf_mismatch(text)
        if not lines:
            return (f"--- panic backtrace: no address in the panic output lies in the code of {self.elf} ---"
                    + (f"\n{warning}" if warning else "")), []
        head = f"--- panic backtrace decoded against {self.elf} ({self.prefix}addr2line) ---"
        return "\n".join([head, *([warning] if warning else []), *lines]), lines

    def _elf_mismatch(self, text: str) -> str:
        match = ELF_SHA.search(text)
        if not match:
            return ""
        printed = match.group(1).lower()
        digest = hashlib.sha256(self.elf.read_bytes()).hexdigest()
        if digest.startswith(printed):
            return ""
        return (f"WARNING: the device runs an ELF with SHA256 {printed}..., {self.elf.name} is {digest[:len(printed)]}"
                "...: the lines below may point to the wrong code (rebuild, or use the build that was flashed)")

    def _gdb_backtrace(self, text: str) -> list[str]:
        from esp_idf_panic_decoder import PanicOutputDecoder

        try:
            output = PanicOutputDecoder(self.prefix, str(self.elf), self.target).process_panic_output(text.encode())
        except (OSError, subprocess.CalledProcessError) as exc:
            return [f"(gdb could not unwind the stack dump: {exc})"]
        frames = [line.strip() for line in output.decode("utf-8", "replace").splitlines()
                  if re.match(r"#\d+\s", line.strip())]
        return ["backtrace unwound by gdb from the stack dump:", *frames] if frames else []


def _location(entry) -> str:
    if entry.path == "ROM":
        return f"{entry.func} in ROM"
    return f"{entry.func} at {entry.path}" + (f":{entry.line}" if entry.line else "")


def decorate(exc: DutPanic, decoder: PanicDecoder | None, log_lines: list[str]) -> DutPanic:
    """The same DutPanic with the decoded backtrace between its first line and the device's last lines."""
    text = panic_text(log_lines)
    if decoder is None:
        block, lines = "--- panic backtrace not decoded: no firmware ELF is known for this DUT ---", []
    else:
        block, lines = decoder.describe(text)
    head = str(exc).partition(TAIL_MARK)[0]
    decorated = DutPanic(f"{head}\n{block}", exc.log_tail)
    decorated.decoded = lines  # type: ignore[attr-defined]
    return decorated


class PanicDecodingClient(ProtocolClient):
    """A ProtocolClient whose DutPanic names the function and line of every code address of the panic."""

    def __init__(self, transport: Transport, panic_decoder: PanicDecoder | None, **kwargs: Any) -> None:
        super().__init__(transport, **kwargs)
        self.panic_decoder = panic_decoder

    def _collect_panic(self, *args: Any, **kwargs: Any) -> None:
        try:
            super()._collect_panic(*args, **kwargs)
        except DutPanic as exc:
            decorated = decorate(exc, self.panic_decoder, list(self.log))
            for line in str(decorated).partition(TAIL_MARK)[0].splitlines()[1:]:
                self.log.append(f"[host] {line}")  # into the device log as well
            raise decorated from None
