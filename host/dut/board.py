"""The board backend: flash the built harness firmware and the model partition with esptool, then talk serial.

What was built is read from ESP-IDF's own build outputs (`flasher_args.json`, the binary partition
table, `config/sdkconfig.json`), so a build made by a CI job in Espressif's container works as is.
Flashing happens once per session and only for regions whose bytes changed since the last flash
of that port (a stamp per port in the cache). The session then keeps the port open; unlike
pytest-embedded's function-scoped `dut`, no test resets the board.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from host.cache import default_cache_root
from host.errors import HarnessError

ROOT = Path(__file__).resolve().parents[2]
MODEL_PARTITION = "model"
PARTITION_MAGIC = 0x50AA


@dataclass(frozen=True)
class Partition:
    label: str
    type: int
    subtype: int
    offset: int
    size: int


@dataclass(frozen=True)
class FlashRegion:
    offset: int
    path: Path
    sha256: str


@dataclass(frozen=True)
class FlashPlan:
    chip: str
    regions: tuple[FlashRegion, ...]
    flash_settings: tuple[str, ...]  # --flash_mode/--flash_freq/--flash_size as the build wants them

    def esptool_args(self, port: str, baud: int, only: tuple[FlashRegion, ...] | None = None) -> list[str]:
        regions = self.regions if only is None else only
        args = ["--chip", self.chip, "--port", port, "--baud", str(baud), "--before", "default-reset",
                "--after", "hard-reset", "write-flash", *self.flash_settings]
        for region in regions:
            args += [hex(region.offset), str(region.path)]
        return args


def read_partition_table(data: bytes) -> list[Partition]:
    """Entries of an ESP-IDF binary partition table (32-byte records, 0xAA50 magic, MD5 entry ends it)."""
    parts = []
    for off in range(0, len(data) - 31, 32):
        magic, ptype, subtype, offset, size, label, _flags = struct.unpack_from("<HBBII16sI", data, off)
        if magic != PARTITION_MAGIC:
            break
        parts.append(Partition(label.split(b"\0", 1)[0].decode("ascii", "replace"), ptype, subtype, offset, size))
    return parts


def find_build(target: str, config: str | None = None, app_dir: Path = ROOT / "firmware") -> Path:
    """The build directory `build_<target>_<config>` with flasher_args.json, or a skip naming what is missing."""
    candidates = [app_dir / f"build_{target}_{config}"] if config else sorted(app_dir.glob(f"build_{target}_*"))
    candidates += [app_dir / "build"]
    for build in candidates:
        if (build / "flasher_args.json").is_file():
            return build
    pytest.skip(
        f"no firmware build for {target} under {app_dir} (looked for build_{target}_<config>/flasher_args.json). "
        f"Build it with ESP-IDF >= 5.3: `. $IDF_PATH/export.sh && cd firmware && "
        f"idf.py -B build_{target}_uart set-target {target} build`, or download the build job's artifacts"
    )


def flash_plan(build: Path, model_image: Path) -> FlashPlan:
    """Every region to flash: what the IDF build lists, plus the model image at the `model` partition."""
    args = json.loads((build / "flasher_args.json").read_text())
    chip = args.get("extra_esptool_args", {}).get("chip")
    regions = []
    for offset, rel in sorted(args["flash_files"].items(), key=lambda kv: int(kv[0], 16)):
        path = build / rel
        if not path.is_file():
            raise HarnessError(f"the build lists {rel} but {path} is missing: rebuild or re-download the artifacts")
        regions.append(FlashRegion(int(offset, 16), path, _sha256(path)))
    table = next((r for r in regions if r.path.name.startswith("partition-table")), None)
    if table is None:
        raise HarnessError(f"{build}/flasher_args.json lists no partition table")
    partitions = {p.label: p for p in read_partition_table(table.path.read_bytes())}
    if MODEL_PARTITION not in partitions:
        raise HarnessError(f"the partition table of {build} has no '{MODEL_PARTITION}' partition: "
                           "build the harness firmware in firmware/, not another app")
    model = partitions[MODEL_PARTITION]
    size = model_image.stat().st_size
    if size > model.size:
        raise HarnessError(f"the model image ({size} bytes) does not fit the '{MODEL_PARTITION}' partition "
                           f"({model.size} bytes): use a smaller input size or enlarge the partition")
    regions.append(FlashRegion(model.offset, model_image, _sha256(model_image)))
    settings = tuple(args.get("write_flash_args", []))
    return FlashPlan(chip or "auto", tuple(regions), settings)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp_path(port: str) -> Path:
    return default_cache_root() / "flash-stamps" / (hashlib.sha256(port.encode()).hexdigest()[:16] + ".json")


def regions_to_flash(plan: FlashPlan, port: str) -> tuple[FlashRegion, ...]:
    """Regions whose bytes differ from what the stamp says this port last received."""
    stamp = _stamp_path(port)
    try:
        last = json.loads(stamp.read_text())
    except (OSError, ValueError):
        last = {}
    return tuple(r for r in plan.regions if last.get(hex(r.offset)) != r.sha256)


def record_flash(plan: FlashPlan, port: str) -> None:
    stamp = _stamp_path(port)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_suffix(".tmp")
    tmp.write_text(json.dumps({hex(r.offset): r.sha256 for r in plan.regions}, indent=1))
    tmp.replace(stamp)


def console_baud(build: Path) -> int:
    try:
        sdkconfig = json.loads((build / "config" / "sdkconfig.json").read_text())
    except (OSError, ValueError):
        return 115200
    return int(sdkconfig.get("ESP_CONSOLE_UART_BAUDRATE", 115200))


def open_device(choice, target: str, model_image: Path, config) -> "Dut":
    """Flash (what changed) and open a board; emulator kinds need the same build and are started by
    pytest-embedded's `idf,qemu` / `idf,espemu` services."""
    import esptool

    from host.dut.client import ProtocolClient
    from host.dut.dut import Dut
    from host.dut.transport import SerialTransport

    build = find_build(target)
    if choice.kind != "board":
        pytest.skip(f"--dut {choice.kind}: start the emulator with pytest-embedded "
                    f"(--embedded-services idf,{choice.kind} --build-dir {build}); this harness drives boards and the sim")
    plan = flash_plan(build, model_image)
    changed = regions_to_flash(plan, choice.port)
    if changed:
        baud = int(__import__("os").environ.get("ESPBAUD", "921600"))
        try:
            esptool.main(plan.esptool_args(choice.port, baud, changed))
        except (esptool.FatalError, SystemExit, OSError) as exc:
            raise HarnessError(f"flashing {choice.port} failed ({exc}); check the port, the cable and the boot mode")
        record_flash(plan, choice.port)
    transport = SerialTransport(choice.port, baudrate=console_baud(build))
    client = ProtocolClient(transport, timeout_s=config.getoption("dut_timeout"))
    port = transport.port
    port.dtr, port.rts = False, True  # EN low: hold the chip in reset
    time.sleep(0.1)
    port.rts = False  # release: the firmware boots and prints its boot record
    boot = client.wait_for_boot(15.0)
    return Dut("board", client, target, choice.port, boot=boot)
