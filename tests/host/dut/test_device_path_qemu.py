"""The QEMU kind's contract without QEMU: the merged flash image (a fake ESP-IDF build directory, a fake and the
real esptool), the QEMU command line, and a session over its TCP serial port against a fake QEMU."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from host.dut import qemu
from host.dut.backend import Artifact, DutOptions, DutUnavailable
from host.dut.panic import PanicDecodingClient
from host.errors import HarnessError
from host.firmware import FirmwareBuild, model_partition
from host.protocol import encode_line

FILES = {"0x0": "bootloader/bootloader.bin", "0x8000": "partition_table/partition-table.bin",
         "0x10000": "yolo11_hil.bin"}
CONTENT = {"0x0": b"\xe9boot", "0x8000": b"\xaa\x50table", "0x10000": b"\xe9app-image"}
MODEL = 0x250000  # the model partition of firmware/partitions_8mb.csv (esp32s3)


def _build(root: Path, flash_size: str = "8MB", octal: bool = True) -> FirmwareBuild:
    build = root / "build_esp32s3_uart"
    for offset, name in FILES.items():
        (build / name).parent.mkdir(parents=True, exist_ok=True)
        (build / name).write_bytes(CONTENT[offset])
    (build / "flasher_args.json").write_text(json.dumps({
        "flash_settings": {"flash_mode": "dio", "flash_size": flash_size, "flash_freq": "80m"},
        "flash_files": FILES, "extra_esptool_args": {"chip": "esp32s3", "before": "default_reset"}}))
    (build / "config").mkdir()
    (build / "config" / "sdkconfig.json").write_text(json.dumps({"SPIRAM_MODE_OCT": octal,
                                                                 "ESPTOOLPY_FLASHSIZE": "8MB"}))
    return FirmwareBuild.from_dir(build, "esp32s3", "uart")


def _artifact(root: Path) -> Artifact:
    pack = root / "model_partition.bin"
    pack.write_bytes(b"PDL3" + bytes(range(256)) * 4)
    return Artifact(pack, None, "0" * 64)


class FakeEsptool:
    """Records every command; `merge-bin` writes the image the way esptool does (0xFF padding, files at offsets),
    `-machine help` and `--version` answer like Espressif's QEMU."""

    def __init__(self, machines: str = "esp32                Espressif ESP32 machine\n"
                                      "esp32s3              Espressif ESP32-S3 machine\n") -> None:
        self.commands: list[list[str]] = []
        self.machines = machines

    def __call__(self, cmd: list[str]) -> subprocess.CompletedProcess:
        self.commands.append(cmd)
        if cmd[1:] == ["-machine", "help"]:
            return subprocess.CompletedProcess(cmd, 0, "Supported machines are:\n" + self.machines, "")
        if cmd[1:] == ["--version"]:
            return subprocess.CompletedProcess(cmd, 0, "QEMU emulator version 9.2.2 (esp_develop_9.2.2_20250817)\n", "")
        merge = cmd.index("merge-bin")
        out, size = Path(cmd[cmd.index("-o") + 1]), cmd[cmd.index("--pad-to-size") + 1]
        image = bytearray(b"\xff" * (int(size[:-2]) << 20))
        rest = cmd[merge + 1:]
        pairs = [(rest[i], rest[i + 1]) for i in range(len(rest) - 1) if re.fullmatch(r"0x[0-9a-f]+", rest[i])]
        for offset, path in pairs:
            data = Path(path).read_bytes()
            image[int(offset, 16):int(offset, 16) + len(data)] = data
        out.write_bytes(bytes(image))
        return subprocess.CompletedProcess(cmd, 0, "", "")


def _check_image(image: Path, artifact: Artifact) -> None:
    data = image.read_bytes()
    assert len(data) == 8 << 20
    for offset, content in CONTENT.items():
        assert data[int(offset, 16):int(offset, 16) + len(content)] == content
    pack = artifact.pack.read_bytes()
    assert data[MODEL:MODEL + len(pack)] == pack
    assert data[MODEL + len(pack):MODEL + len(pack) + 16] == b"\xff" * 16


def test_the_merged_image_command_and_what_it_holds(tmp_path: Path) -> None:
    build, artifact, esptool = _build(tmp_path), _artifact(tmp_path), FakeEsptool()
    image, cmd = qemu.make_flash_image(build, artifact, model_partition("esp32s3", "uart"), tmp_path / "work",
                                       esptool)
    assert cmd[1:] == ["-m", "esptool", "--chip", "esp32s3", "merge-bin",
                       "-o", str(tmp_path / "work" / "flash_image.bin"), "--pad-to-size", "8MB", "--flash-mode", "dio", "--flash-size", "8MB", "--flash-freq", "80m",
                       "0x0", str(build.path / FILES["0x0"]), "0x8000", str(build.path / FILES["0x8000"]),
                       "0x10000", str(build.path / FILES["0x10000"]), f"{MODEL:#x}", str(artifact.pack)]
    _check_image(image, artifact)


def test_the_merged_image_with_the_pinned_esptool(tmp_path: Path) -> None:
    build, artifact = _build(tmp_path), _artifact(tmp_path)
    image, _ = qemu.make_flash_image(build, artifact, model_partition("esp32s3", "uart"), tmp_path / "work")
    _check_image(image, artifact)


def test_flash_size_comes_from_the_build(tmp_path: Path) -> None:
    from host.firmware import plan_flash

    kept = _build(tmp_path / "keep", flash_size="keep")  # then config/sdkconfig.json says 8MB
    plan = plan_flash(kept, "qemu", device="qemu", stamp_dir=tmp_path, force=True)
    assert qemu.flash_size(kept, plan) == "8MB"
    (kept.path / "config" / "sdkconfig.json").write_text("{}")  # then the smallest size that holds every region
    assert qemu.flash_size(kept, plan) == "2MB"


def test_the_qemu_command_line(tmp_path: Path) -> None:
    cmd = qemu.qemu_command("/opt/qemu/bin/qemu-system-xtensa", "esp32s3", tmp_path / "flash_image.bin",
                            tmp_path / "qemu_efuse.bin", 45678, octal_psram=True)
    assert cmd == ["/opt/qemu/bin/qemu-system-xtensa", "-nographic", "-machine", "esp32s3", "-m", "32M",
                   "-S", "-monitor", "stdio",
                   "-drive", f"file={tmp_path / 'qemu_efuse.bin'},if=none,format=raw,id=efuse",
                   "-global", "driver=nvram.esp32s3.efuse,property=drive,value=efuse",
                   "-global", "driver=timer.esp32s3.timg,property=wdt_disable,value=true",
                   "-global", "driver=ssi_psram,property=is_octal,value=true",
                   "-drive", f"file={tmp_path / 'flash_image.bin'},if=mtd,format=raw",
                   "-serial", "tcp:127.0.0.1:45678,server=on,wait=off"]
    quad = qemu.qemu_command("qemu-system-xtensa", "esp32s3", Path("i"), Path("e"), 1, octal_psram=False)
    assert "driver=ssi_psram,property=is_octal,value=true" not in quad


class FakeQemu:
    """Stands in for a QEMU process: listens on the -serial port; once the monitor (stdin) says `cont` - QEMU was
    started paused - prints boot output and a boot record at once (anything printed before the harness's open
    finished would be lost), then answers `info`."""

    instances: list["FakeQemu"] = []

    def __init__(self, cmd: list[str], **kwargs) -> None:
        self.cmd = cmd
        self.returncode: int | None = None
        assert "-S" in cmd and cmd[cmd.index("-monitor") + 1] == "stdio" and kwargs["stdin"] == subprocess.PIPE
        port = int(re.search(r"tcp:127\.0\.0\.1:(\d+),server=on,wait=off", cmd[cmd.index("-serial") + 1]).group(1))
        self.server = socket.create_server(("127.0.0.1", port))
        read_end, write_end = os.pipe()
        self.stdin = os.fdopen(write_end, "wb")
        self.monitor = os.fdopen(read_end, "rb")
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        FakeQemu.instances.append(self)

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn, self.monitor:
            if self.monitor.readline().strip() != b"cont":
                return
            conn.sendall(b"ESP-ROM:esp32s3-20210327\r\nI (31) boot: ESP-IDF v5.5.1 2nd stage bootloader\r\n")
            conn.sendall(encode_line({"t": "boot", "reason": "poweron", "n": len(FakeQemu.instances)}))
            buffer = b""
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    request = json.loads(line[line.index(b"{"):line.rindex(b"}") + 1])
                    conn.sendall(encode_line({"t": request["t"], "id": request["id"], "ok": True, "config": "uart"}))

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.returncode = -15
        self.server.close()
        self.stdin.close()

    kill = terminate

    def wait(self, timeout: float | None = None) -> int | None:
        return self.returncode


def _backend(tmp_path: Path, monkeypatch, esptool: FakeEsptool, popen=FakeQemu) -> qemu.QemuBackend:
    build = _build(tmp_path)
    monkeypatch.setattr(qemu, "locate_build", lambda target, config: build)
    return qemu.QemuBackend(DutOptions(target="esp32s3", timeout_s=10.0), runner=esptool, popen=popen,
                            which=lambda name: f"/opt/qemu/bin/{name}", workdir=tmp_path / "work")


def test_a_session_over_the_serial_socket(tmp_path: Path, monkeypatch) -> None:
    FakeQemu.instances.clear()
    esptool = FakeEsptool()
    backend = _backend(tmp_path, monkeypatch, esptool)
    backend.prepare(_artifact(tmp_path))
    assert (tmp_path / "work" / "qemu_efuse.bin").read_bytes() == bytes(38) + b"\x0c" + bytes(1024 - 39)
    dut = backend.open()
    try:
        assert dut.kind == "qemu" and not dut.timed and dut.latency_label == "emulated"
        assert dut.boot["reason"] == "poweron" and dut.port.startswith("socket://127.0.0.1:")
        assert any("ESP-ROM:esp32s3" in line for line in dut.client.log)  # wait=on: nothing printed is lost
        assert isinstance(dut.client, PanicDecodingClient)
        assert "no ELF at" in dut.client.panic_decoder.problem  # the fake build has none: a panic would say so
        first = FakeQemu.instances[-1]
        assert backend.reset(dut)["n"] == 2 and first.returncode == -15  # a power cycle: a new QEMU process
        provenance = backend.provenance(dut)
        assert provenance["qemu"].startswith("QEMU emulator version 9.2.2")
        assert provenance["qemu_command"].startswith("/opt/qemu/bin/qemu-system-xtensa -nographic -machine esp32s3")
        assert provenance["qemu_flash_image"].startswith("esptool --chip esp32s3 merge-bin")
    finally:
        dut.close()
    assert FakeQemu.instances[-1].returncode == -15


def test_qemu_that_exits_at_once_is_reported_with_its_output(tmp_path: Path, monkeypatch) -> None:
    class Dying:
        def __init__(self, cmd, stdout=None, **kwargs):
            stdout.write(b"qemu-system-xtensa: -machine esp32s3: unsupported machine type\n")
            self.returncode = 1

        def poll(self):
            return self.returncode

    backend = _backend(tmp_path, monkeypatch, FakeEsptool(), popen=Dying)
    backend.prepare(_artifact(tmp_path))
    with pytest.raises(HarnessError, match="QEMU exited with 1 before its serial port opened: .*unsupported machine"):
        backend.open()


def test_no_qemu_or_no_esp32s3_machine_is_unavailable_with_the_install_command(tmp_path: Path, monkeypatch) -> None:
    missing = qemu.QemuBackend(DutOptions(target="esp32s3"), which=lambda name: None, workdir=tmp_path)
    with pytest.raises(DutUnavailable, match=re.escape("python $IDF_PATH/tools/idf_tools.py install qemu-xtensa")):
        missing.prepare(_artifact(tmp_path))
    upstream = _backend(tmp_path, monkeypatch, FakeEsptool(machines="esp32 ...\nsim ...\n"))
    with pytest.raises(DutUnavailable, match="has no esp32s3 machine.*idf_tools.py install qemu-xtensa"):
        upstream.prepare(_artifact(tmp_path))
    p4 = qemu.QemuBackend(DutOptions(target="esp32p4"), which=lambda name: "/x", workdir=tmp_path)
    with pytest.raises(DutUnavailable, match="QEMU emulates no esp32p4"):
        p4.prepare(_artifact(tmp_path))
