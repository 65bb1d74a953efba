"""The flash plan for a board: which regions (bootloader, partition table, app, model) go where,
and which of them actually changed since this board was last flashed.

Two levels of "unchanged": a local stamp per board (sha256 of every region last written through
this port, so an unchanged session starts without touching the board), and esptool's own
`--skip-flashed` (it compares each region with the chip's flash before writing, so a lost or stale
stamp costs a check, never a wrong skip of a region that differs). The stamp is written only after
esptool succeeds, and dropped for every region of a failed run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from host.cache import default_cache_root, sha256_file
from host.errors import HarnessError
from host.firmware.build import FirmwareBuild
from host.firmware.partitions import Partition

STAMP_DIR = default_cache_root() / "flash-stamps"
SECTION_NAMES = {"bootloader": "bootloader", "partition-table": "partition-table", "app": "app"}


@dataclass(frozen=True)
class Region:
    name: str
    offset: int
    path: Path
    size: int
    sha256: str


def device_id(port: str) -> str:
    """A stable name for the board on `port`: its /dev/serial/by-id link when one points to it."""
    real = os.path.realpath(port)
    by_id = Path("/dev/serial/by-id")
    if by_id.is_dir():
        for link in sorted(by_id.iterdir()):
            if os.path.realpath(link) == real:
                return link.name
    return port


@dataclass
class FlashPlan:
    chip: str
    port: str
    baud: int
    device: str
    flash_settings: dict[str, str]
    regions: list[Region]
    to_write: list[Region]
    stamp_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def skipped(self) -> list[Region]:
        return [r for r in self.regions if r not in self.to_write]

    def command(self, python: str = sys.executable) -> list[str]:
        """esptool (v5 syntax) writing exactly the changed regions."""
        before = str(self.extra.get("before", "default_reset")).replace("_", "-")
        after = str(self.extra.get("after", "hard_reset")).replace("_", "-")
        cmd = [python, "-m", "esptool", "--chip", self.chip, "--port", self.port, "--baud", str(self.baud),
               "--before", before, "--after", after, "write-flash", "--skip-flashed"]
        for key, opt in (("flash_mode", "--flash-mode"), ("flash_size", "--flash-size"),
                         ("flash_freq", "--flash-freq")):
            if key in self.flash_settings:
                cmd += [opt, self.flash_settings[key]]
        for region in sorted(self.to_write, key=lambda r: r.offset):
            cmd += [f"{region.offset:#x}", str(region.path)]
        return cmd

    def _stamp(self) -> dict:
        if self.stamp_path.is_file():
            try:
                return json.loads(self.stamp_path.read_text())
            except json.JSONDecodeError:
                return {}
        return {}

    def record(self, ok: bool) -> None:
        """After esptool: remember what the board holds (ok) or forget the regions we touched (failure)."""
        stamp = self._stamp()
        regions = stamp.setdefault("regions", {})
        for region in self.to_write:
            if ok:
                regions[f"{region.offset:#x}"] = {"name": region.name, "sha256": region.sha256, "size": region.size}
            else:
                regions.pop(f"{region.offset:#x}", None)
        stamp["chip"] = self.chip
        self.stamp_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.stamp_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")
        tmp.replace(self.stamp_path)


def plan_flash(build: FirmwareBuild, port: str, *, model_image: Path | None = None,
               model_part: Partition | None = None, baud: int = 921600, force: bool = False,
               device: str | None = None, stamp_dir: Path = STAMP_DIR) -> FlashPlan:
    """Regions of `build` (+ the model pack at its partition) and the subset to write to the board on `port`."""
    args = build.flasher_args
    names = {str(sec.get("offset")): SECTION_NAMES[key] for key, sec in args.items()
             if key in SECTION_NAMES and isinstance(sec, dict)}
    regions = []
    for offset, file in args.get("flash_files", {}).items():
        path = build.path / file
        regions.append(Region(names.get(offset, Path(file).stem), int(offset, 0), path, path.stat().st_size,
                              sha256_file(path)))
    if model_image is not None:
        if model_part is None:
            raise HarnessError("a model image needs the model partition (host.firmware.model_partition)")
        size = model_image.stat().st_size
        with open(model_image, "rb") as fh:
            magic = fh.read(4)
        if magic != b"PDL3":
            raise HarnessError(f"{model_image} is not a PDL3 pack (starts {magic!r}): pack the .espdl with "
                               "`python -m host espdl pack` (esp-dl >= 3.3.7 format)")
        if size > model_part.size:
            raise HarnessError(f"model pack {model_image} is {size} bytes but partition '{model_part.name}' holds "
                               f"{model_part.size}: enlarge it in firmware/partitions*.csv")
        regions.append(Region("model", model_part.offset, model_image, size, sha256_file(model_image)))
    regions.sort(key=lambda r: r.offset)
    for a, b in zip(regions, regions[1:]):
        if a.offset + a.size > b.offset:
            raise HarnessError(f"flash regions overlap: {a.name} at {a.offset:#x}+{a.size:#x} and {b.name} "
                               f"at {b.offset:#x}")
    dev = device or device_id(port)
    stamp_path = stamp_dir / (re.sub(r"[^A-Za-z0-9._-]", "_", dev) + ".json")
    plan = FlashPlan(build.target, port, baud, dev, dict(args.get("flash_settings", {})), regions, [], stamp_path,
                     dict(args.get("extra_esptool_args", {})))
    known = {} if force else plan._stamp().get("regions", {})
    plan.to_write = [r for r in regions if known.get(f"{r.offset:#x}", {}).get("sha256") != r.sha256]
    return plan


def run_flash(plan: FlashPlan, run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> bool:
    """Write the plan's changed regions with esptool. Returns False when nothing needed writing."""
    if not plan.to_write:
        return False
    result = run(plan.command(), capture_output=True, text=True)
    plan.record(result.returncode == 0)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise HarnessError(f"esptool could not flash {plan.port} (exit {result.returncode}); check the port, the "
                           f"cable and that the board is in reach of its ROM bootloader.\n{tail}")
    return True
