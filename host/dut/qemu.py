"""The QEMU kind: the harness firmware for ESP32-S3 run by Espressif's QEMU, talked to over a TCP serial port.

As pytest-embedded-qemu does it (pytest_embedded_qemu/app.py and qemu.py): one flash image made by
`esptool merge-bin` from the build's regions - bootloader, partition table, app - plus the model pack at the
`model` partition, padded to the build's flash size; then

    qemu-system-xtensa -nographic -machine esp32s3 ... -drive file=<image>,if=mtd,format=raw
                       -serial tcp:127.0.0.1:PORT,server=on,wait=off

and the protocol over `socket://127.0.0.1:PORT`. From ESP-IDF's `idf.py qemu` (tools/idf_py_actions/qemu_ext.py)
come the ESP32-S3 specifics: `-m 32M` of PSRAM (octal when the build says CONFIG_SPIRAM_MODE_OCT), the eFuse
image of a chip revision v0.3 and the timer-group watchdogs off (an emulated inference is slow).

Two choices differ from the defaults of pytest-embedded, on purpose: the serial port listens on 127.0.0.1 only
(not every interface), and the chip starts paused (`-S`) and is resumed with `cont` on QEMU's monitor (its
stdin, `-monitor stdio`) once the harness is connected: what QEMU prints on a TCP serial port nobody listens to
is dropped, and pyserial discards what arrived before its open finished, so only this way do the ROM banner,
the boot record and a boot-time panic reach the client and the device log.

Espressif's QEMU has no timing model: latencies are labelled `emulated` and never compared with a chip's. It
emulates no ESP32-P4 (there is none), so the kind is offered for esp32s3 only, and only when
`qemu-system-xtensa` is on PATH (host.dut.select).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Callable

from host.dut.backend import Artifact, DutOptions, DutUnavailable
from host.dut.board import locate_build
from host.dut.dut import Dut
from host.dut.panic import PanicDecoder, PanicDecodingClient
from host.dut.transport import SerialTransport
from host.errors import HarnessError
from host.firmware import FirmwareBuild, Partition, model_partition, plan_flash
from host.firmware.flash import FlashPlan

QEMU_PROG = "qemu-system-xtensa"
INSTALL = "python $IDF_PATH/tools/idf_tools.py install qemu-xtensa"
INSTALL_HINT = (f"Espressif's QEMU ({QEMU_PROG} with the esp32s3 machine) is not installed: run `{INSTALL}`, "
                "then `. $IDF_PATH/export.sh` to put it on PATH")
BOOT_TIMEOUT_S = 120.0  # the bootloader, then the model pack hashed and loaded, all emulated
START_TIMEOUT_S = 30.0  # until QEMU listens on its serial port
PSRAM = "32M"  # as idf.py qemu gives an ESP32-S3 (the dev kits have 8 MB: esp-dl then copies params to PSRAM)
#: pytest-embedded-qemu's flash sizes for a merged image (IdfFlashImageMaker.XTENSA_FLASH_BIN_SIZES)
FLASH_SIZES = ((2 << 20, "2MB"), (4 << 20, "4MB"), (8 << 20, "8MB"), (16 << 20, "16MB"))
#: the eFuse block of an ESP32-S3 v0.3 (idf.py qemu's and pytest-embedded-qemu's default_efuse): 1 KiB, byte 38 = 0x0c
EFUSE_SIZE, EFUSE_REVISION = 1024, {38: 0x0C}

#: (command) -> CompletedProcess with returncode/stdout/stderr; tests give a fake one
Runner = Callable[[list[str]], subprocess.CompletedProcess]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies (no-op elsewhere)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def available(which: Callable[[str], str | None] = shutil.which) -> bool:
    """True when a QEMU for Xtensa is on PATH (whether it has the esp32s3 machine is checked at prepare)."""
    return which(QEMU_PROG) is not None


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def flash_size(build: FirmwareBuild, plan: FlashPlan) -> str:
    """The image size: the build's flash size (flasher_args.json, else config/sdkconfig.json), else the smallest
    size that holds every region (pytest-embedded's rule for `keep`/`detect`)."""
    size = str(plan.flash_settings.get("flash_size", "")).split("-")[0]
    if size in ("", "keep", "detect"):
        size = str(sdkconfig(build).get("ESPTOOLPY_FLASHSIZE", ""))
    if size in {name for _, name in FLASH_SIZES}:
        return size
    end = max(r.offset + r.size for r in plan.regions)
    for limit, name in FLASH_SIZES:
        if end <= limit:
            return name
    raise HarnessError(f"the flash regions end at {end:#x}, beyond the 16 MB QEMU emulates")


def merge_command(plan: FlashPlan, image: Path, size: str, python: str = sys.executable) -> list[str]:
    """`esptool merge-bin` (v5 syntax) of every region of the plan into one raw image of `size`."""
    cmd = [python, "-m", "esptool", "--chip", plan.chip, "merge-bin", "-o", str(image), "--pad-to-size", size]
    for key, opt in (("flash_mode", "--flash-mode"), ("flash_size", "--flash-size"), ("flash_freq", "--flash-freq")):
        if key in plan.flash_settings:
            cmd += [opt, str(plan.flash_settings[key])]
    for region in sorted(plan.regions, key=lambda r: r.offset):
        cmd += [f"{region.offset:#x}", str(region.path)]
    return cmd


def make_flash_image(build: FirmwareBuild, artifact: Artifact, model_part: Partition, workdir: Path,
                     runner: Runner = _run) -> tuple[Path, list[str]]:
    """Merge the build and the model pack into `workdir/flash_image.bin`; returns the image and the command."""
    plan = plan_flash(build, "qemu", model_image=artifact.pack, model_part=model_part, device="qemu",
                      stamp_dir=workdir, force=True)
    workdir.mkdir(parents=True, exist_ok=True)
    image = workdir / "flash_image.bin"
    size = flash_size(build, plan)
    cmd = merge_command(plan, image, size)
    result = runner(cmd)
    if result.returncode != 0 or not image.is_file():
        tail = ((result.stdout or "") + (result.stderr or ""))[-2000:]
        raise HarnessError(f"esptool merge-bin could not make the QEMU flash image (exit {result.returncode}):\n{tail}")
    return image, cmd


def sdkconfig(build: FirmwareBuild) -> dict[str, Any]:
    try:
        values = json.loads((build.path / "config" / "sdkconfig.json").read_text())
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def qemu_command(prog: str, target: str, image: Path, efuse: Path, port: int, octal_psram: bool) -> list[str]:
    """The QEMU command line (see the module docstring for where each argument comes from)."""
    cmd = [prog, "-nographic", "-machine", target, "-m", PSRAM, "-S", "-monitor", "stdio",
           "-drive", f"file={efuse},if=none,format=raw,id=efuse",
           "-global", f"driver=nvram.{target}.efuse,property=drive,value=efuse",
           "-global", f"driver=timer.{target}.timg,property=wdt_disable,value=true"]
    if octal_psram:
        cmd += ["-global", "driver=ssi_psram,property=is_octal,value=true"]
    return cmd + ["-drive", f"file={image},if=mtd,format=raw", "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuBackend:
    """Espressif's QEMU on a merged flash image; `reset` restarts QEMU on the same image (a power cycle)."""

    kind = "qemu"
    targets = ("esp32s3",)
    timed = False
    latency_label = "emulated"
    banner = "results are from Espressif's QEMU emulating an ESP32-S3 (no timing model): latencies are emulated"

    def __init__(self, options: DutOptions, *, runner: Runner = _run, popen: Callable[..., Any] = subprocess.Popen,
                 which: Callable[[str], str | None] = shutil.which, workdir: Path | None = None) -> None:
        self.options = options
        self.runner = runner
        self.popen = popen
        self.which = which
        self.prog: str | None = None
        self.version = ""
        self.build: FirmwareBuild | None = None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="hil-qemu-"))
            weakref.finalize(self, shutil.rmtree, str(workdir), True)  # the image is per session: 8-16 MB
        self.workdir = Path(workdir)
        self.image: Path | None = None
        self.efuse = self.workdir / "qemu_efuse.bin"
        self.merge_cmd: list[str] = []
        self.cmd: list[str] = []
        self.url: str | None = None
        self.process: Any = None

    def _check_qemu(self) -> None:
        o = self.options
        if o.target not in self.targets:
            raise DutUnavailable(f"QEMU emulates no {o.target} (Espressif's QEMU has ESP32, ESP32-S3 and ESP32-C3); "
                                 "use --dut board or --dut sim")
        self.prog = self.which(QEMU_PROG)
        if self.prog is None:
            raise DutUnavailable(INSTALL_HINT)
        machines = self.runner([self.prog, "-machine", "help"])
        if machines.returncode != 0 or not any(line.split()[:1] == [o.target]
                                               for line in (machines.stdout or "").splitlines()):
            raise DutUnavailable(f"{self.prog} has no {o.target} machine (a QEMU without Espressif's chips?): "
                                 f"install Espressif's QEMU: `{INSTALL}`")
        version = self.runner([self.prog, "--version"])
        self.version = (version.stdout or "").strip().splitlines()[0] if version.stdout else "unknown"

    def prepare(self, artifact: Artifact) -> None:
        self._check_qemu()
        o = self.options
        self.build = locate_build(o.target, o.firmware_config)
        part = model_partition(o.target, o.firmware_config)
        self.image, self.merge_cmd = make_flash_image(self.build, artifact, part, self.workdir, self.runner)
        efuse = bytearray(EFUSE_SIZE)
        for offset, value in EFUSE_REVISION.items():
            efuse[offset] = value
        self.efuse.write_bytes(bytes(efuse))

    def open(self) -> Dut:
        if self.build is None or self.image is None or self.prog is None:
            raise DutUnavailable("QEMU was not prepared (no flash image) before it was opened")
        o = self.options
        port = free_port()
        octal = bool(sdkconfig(self.build).get("SPIRAM_MODE_OCT"))
        self.cmd = qemu_command(self.prog, o.target, self.image, self.efuse, port, octal)
        self.url = f"socket://127.0.0.1:{port}"
        output = open(self.workdir / "qemu.out", "wb")
        # stdin a pipe of its own: QEMU's monitor, which starts the paused chip once the port is open; QEMU dies
        # with the harness (Linux PR_SET_PDEATHSIG), never outliving a killed session
        self.process = self.popen(self.cmd, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                                  preexec_fn=_die_with_parent)
        output.close()
        process = self.process
        try:
            transport = self._connect(process)
            process.stdin.write(b"cont\n")  # the chip runs from here: nothing it prints can be lost
            process.stdin.flush()
            client = PanicDecodingClient(transport, PanicDecoder.for_build(self.build.path, o.target),
                                         timeout_s=o.timeout_s)
            dut = Dut(self.kind, client, o.target, self.url, self.timed, self.latency_label,
                      close_hooks=[lambda: self._stop(process)])
            dut.boot = client.wait_for_boot(BOOT_TIMEOUT_S)
        except BaseException:
            self._stop(process)
            raise
        return dut

    def _connect(self, process: Any) -> SerialTransport:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise HarnessError(f"QEMU exited with {process.returncode} before its serial port opened: "
                                   f"{self._output_tail()} (command: {' '.join(self.cmd)})")
            try:
                return SerialTransport(self.url, open_timeout=0.5)
            except HarnessError:
                if time.monotonic() > deadline:
                    raise HarnessError(f"QEMU did not open its serial port {self.url} within {START_TIMEOUT_S:.0f} s: "
                                       f"{self._output_tail()}") from None

    def _output_tail(self) -> str:
        try:
            return (self.workdir / "qemu.out").read_text(errors="replace").strip()[-1500:] or "no output"
        except OSError:
            return "no output"

    @staticmethod
    def _stop(process: Any) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def reset(self, dut: Dut) -> dict[str, Any]:
        """A power cycle: QEMU restarts on the same flash image and the client waits for the boot record."""
        dut.close()
        return dut.reconnect(self.open())

    def provenance(self, dut: Dut) -> dict[str, Any]:
        info = dut.info().raw
        return {"port": dut.port, "firmware_config": info.get("config", self.options.firmware_config),
                "sdkconfig_sha256": info.get("sdkconfig_sha256"),
                "firmware_build": str(self.build.path) if self.build else None,
                "qemu": self.version, "qemu_command": " ".join(self.cmd),
                "qemu_flash_image": "esptool " + " ".join(self.merge_cmd[3:])}  # what the image holds, where
