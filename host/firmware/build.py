"""ESP-IDF build of the firmware, cached on firmware sources + sdkconfig files + IDF version.

One build directory per (target, config), `firmware/build_<target>_<config>`, the layout
idf-build-apps and pytest-embedded expect. The build is skipped when the stamp in that directory
carries the same cache key and the flashable outputs exist; a prebuilt directory (a CI artifact)
can be used with `FirmwareBuild.from_dir` without any ESP-IDF install.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from host.cache import sha256_file
from host.errors import HarnessError
from host.firmware.partitions import FIRMWARE_DIR, sdkconfig_defaults

CACHE_VERSION = "hil-fw-build-1"
STAMP = "hil_build.json"
TOOLCHAINS = {
    "esp32p4": ("riscv32-esp-elf-gcc",),
    "esp32s3": ("xtensa-esp-elf-gcc", "xtensa-esp32s3-elf-gcc"),
}
INSTALL_HINT = (
    "Install and export ESP-IDF v5.5, then run again:\n"
    "  git clone -b v5.5.1 --recursive https://github.com/espressif/esp-idf.git ~/esp/esp-idf\n"
    "  ~/esp/esp-idf/install.sh esp32p4,esp32s3\n"
    "  . ~/esp/esp-idf/export.sh\n"
    "(or use a firmware build directory from CI with --build-dir, or the simulated DUT)")


class IdfMissing(HarnessError):
    """No usable ESP-IDF environment: the message names what is missing and how to install it."""


@dataclass(frozen=True)
class IdfEnv:
    idf_path: Path
    idf_py: str
    version: str

    @classmethod
    def detect(cls, target: str, env: Mapping[str, str] | None = None) -> "IdfEnv":
        """The exported ESP-IDF for `target`, or IdfMissing naming the missing piece."""
        env = os.environ if env is None else env
        path = env.get("PATH", "")
        idf_path = env.get("IDF_PATH")
        if not idf_path:
            raise IdfMissing("ESP-IDF not found: IDF_PATH is not set. " + INSTALL_HINT)
        root = Path(idf_path)
        if not (root / "tools" / "idf.py").is_file():
            raise IdfMissing(f"IDF_PATH={idf_path} holds no tools/idf.py. " + INSTALL_HINT)
        idf_py = shutil.which("idf.py", path=path)
        if idf_py is None:
            raise IdfMissing("idf.py is not on PATH: ESP-IDF is installed but not exported. "
                             f"Run `. {idf_path}/export.sh` first.")
        if target not in TOOLCHAINS:
            raise HarnessError(f"unsupported firmware target '{target}' (supported: {', '.join(TOOLCHAINS)})")
        if not any(shutil.which(tool, path=path) for tool in TOOLCHAINS[target]):
            raise IdfMissing(f"the {target} toolchain ({' or '.join(TOOLCHAINS[target])}) is not on PATH: run "
                             f"`{idf_path}/install.sh {target}` and `. {idf_path}/export.sh`.")
        return cls(root, idf_py, idf_version(root))


def idf_version(root: Path) -> str:
    """ESP-IDF version string: version.txt (release archives), else git describe, else version.cmake."""
    txt = root / "version.txt"
    if txt.is_file():
        return txt.read_text().strip()
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--tags", "--dirty"], capture_output=True,
                             text=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    cmake = root / "tools" / "cmake" / "version.cmake"
    if cmake.is_file():
        parts = dict(re.findall(r"set\(IDF_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)\)", cmake.read_text()))
        if len(parts) == 3:
            return f"v{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"
    raise IdfMissing(f"cannot tell the ESP-IDF version of {root} (no version.txt, git or version.cmake)")


def build_dir(target: str, config: str, firmware_dir: Path = FIRMWARE_DIR) -> Path:
    return firmware_dir / f"build_{target}_{config}"


def _source_files(firmware_dir: Path) -> list[Path]:
    """Every file that can change the firmware binary: sources, CMake, Kconfig, manifests, sdkconfig files."""
    skip_dirs = {"managed_components", ".git", "__pycache__"}
    files = []
    for path in sorted(firmware_dir.rglob("*")):
        rel = path.relative_to(firmware_dir)
        if not path.is_file() or rel.parts[0].startswith("build") or skip_dirs & set(rel.parts):
            continue
        if rel.parts[0] in ("sdkconfig", "sdkconfig.old"):  # generated per build
            continue
        if "test" in rel.parts and "hil_protocol" in rel.parts:  # native tests are not in the firmware
            continue
        if rel.parts[0] == "host":  # the host build's stand-ins (tests/host/firmware/test_host_build.py)
            continue
        files.append(path)
    return files


def cache_key(target: str, config: str, idf: str, firmware_dir: Path = FIRMWARE_DIR) -> str:
    """sha256 over the firmware sources (paths and bytes), the target, the config and the IDF version."""
    h = hashlib.sha256(f"{CACHE_VERSION}\0{target}\0{config}\0{idf}\0".encode())
    for path in _source_files(firmware_dir):
        h.update(str(path.relative_to(firmware_dir)).encode() + b"\0")
        h.update(bytes.fromhex(sha256_file(path)))
    return h.hexdigest()


def build_command(env: IdfEnv, target: str, config: str, firmware_dir: Path = FIRMWARE_DIR) -> list[str]:
    """The idf.py invocation (the same arguments idf-build-apps passes for @t/@w builds)."""
    out = build_dir(target, config, firmware_dir)
    defaults = ";".join(str(p) for p in sdkconfig_defaults(target, config, firmware_dir))
    return [env.idf_py, "-C", str(firmware_dir), "-B", str(out), f"-DIDF_TARGET={target}",
            f"-DSDKCONFIG={out / 'sdkconfig'}", f"-DSDKCONFIG_DEFAULTS={defaults}", "build"]


@dataclass(frozen=True)
class FirmwareBuild:
    """A flashable build directory (ours or a CI artifact)."""

    target: str
    config: str
    path: Path
    key: str
    reused: bool
    flasher_args: dict

    @classmethod
    def from_dir(cls, path: Path, target: str | None = None, config: str = "") -> "FirmwareBuild":
        args_path = path / "flasher_args.json"
        if not args_path.is_file():
            raise HarnessError(f"{path} is not an ESP-IDF build directory (no flasher_args.json): build the "
                               "firmware first (python -m host firmware build) or download the CI artifact")
        try:
            args = json.loads(args_path.read_text())
            chip = args.get("extra_esptool_args", {}).get("chip")
            stamp = path / STAMP
            key = json.loads(stamp.read_text()).get("key", "") if stamp.is_file() else ""
        except (ValueError, AttributeError) as exc:
            raise HarnessError(f"{path} is a damaged ESP-IDF build directory ({type(exc).__name__}: {exc}); "
                               "rebuild the firmware or download the CI artifact again") from None
        if target is not None and chip not in (None, target):
            raise HarnessError(f"{path} was built for {chip}, not {target}: use the build for {target}")
        for file in args.get("flash_files", {}).values():
            if not (path / file).is_file():
                raise HarnessError(f"{path} is incomplete: {file} is missing (rebuild or re-download it)")
        return cls(chip or target or "", config, path, key, True, args)


def build_firmware(target: str, config: str, firmware_dir: Path = FIRMWARE_DIR,
                   env: Mapping[str, str] | None = None,
                   run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> FirmwareBuild:
    """Build (or reuse) firmware/build_<target>_<config>. Raises IdfMissing without ESP-IDF."""
    idf = IdfEnv.detect(target, env)
    out = build_dir(target, config, firmware_dir)
    key = cache_key(target, config, idf.version, firmware_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".hil_build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers: one builds, the others reuse
        stamp = out / STAMP
        if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
            try:
                return FirmwareBuild.from_dir(out, target, config)
            except HarnessError:
                pass  # stamp but missing outputs: rebuild
        stamp.unlink(missing_ok=True)
        log = out / "hil_build.log"
        with open(log, "w") as fh:
            result = run(build_command(idf, target, config, firmware_dir), stdout=fh, stderr=subprocess.STDOUT,
                         env=dict(env) if env is not None else None)
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
            raise HarnessError(f"firmware build for {target}/{config} failed (exit {result.returncode}); "
                               f"full log: {log}\n{tail}")
        stamp.write_text(json.dumps({"key": key, "target": target, "config": config, "idf": idf.version}) + "\n")
        built = FirmwareBuild.from_dir(out, target, config)
        return FirmwareBuild(target, config, out, key, False, built.flasher_args)
