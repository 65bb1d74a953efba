"""Firmware build (skip path, command line, cache key) and the flash plan, without ESP-IDF or a board."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from host.errors import HarnessError
from host.firmware.build import (
    FirmwareBuild,
    IdfEnv,
    IdfMissing,
    build_command,
    build_firmware,
    cache_key,
)
from host.firmware.flash import plan_flash, run_flash
from host.firmware.partitions import FIRMWARE_DIR, Partition


def fake_idf(tmp_path: Path, version: str = "v5.5.1") -> dict[str, str]:
    """An environment with an IDF_PATH, idf.py and a toolchain binary on PATH (all fakes)."""
    idf = tmp_path / "esp-idf"
    (idf / "tools").mkdir(parents=True)
    (idf / "tools" / "idf.py").write_text("")
    (idf / "version.txt").write_text(version + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("idf.py", "riscv32-esp-elf-gcc"):
        exe = bin_dir / tool
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return {"IDF_PATH": str(idf), "PATH": str(bin_dir)}


def copy_firmware(tmp_path: Path) -> Path:
    dst = tmp_path / "firmware"
    shutil.copytree(FIRMWARE_DIR, dst, ignore=shutil.ignore_patterns("build*", "managed_components"))
    return dst


@pytest.mark.parametrize("env,missing", [
    ({"PATH": "/usr/bin"}, "IDF_PATH is not set"),
    ({"PATH": "/usr/bin", "IDF_PATH": "/nonexistent/esp-idf"}, "holds no tools/idf.py"),
])
def test_without_esp_idf_the_error_says_how_to_install_it(env, missing):
    with pytest.raises(IdfMissing) as err:
        build_firmware("esp32p4", "uart", env=env)
    assert missing in str(err.value) and "export.sh" in str(err.value) and "v5.5" in str(err.value)
    assert isinstance(err.value, HarnessError)


def test_unexported_idf_and_missing_toolchain_are_named(tmp_path):
    env = fake_idf(tmp_path)
    with pytest.raises(IdfMissing, match="idf.py is not on PATH"):
        IdfEnv.detect("esp32p4", {"IDF_PATH": env["IDF_PATH"], "PATH": "/nonexistent"})
    with pytest.raises(IdfMissing, match="xtensa"):
        IdfEnv.detect("esp32s3", env)
    assert IdfEnv.detect("esp32p4", env).version == "v5.5.1"


def test_build_command_is_the_idf_build_apps_shape(tmp_path):
    env = IdfEnv.detect("esp32p4", fake_idf(tmp_path))
    cmd = build_command(env, "esp32p4", "usj")
    out = FIRMWARE_DIR / "build_esp32p4_usj"
    assert cmd[1:] == ["-C", str(FIRMWARE_DIR), "-B", str(out), "-DIDF_TARGET=esp32p4", f"-DSDKCONFIG={out / 'sdkconfig'}",
                       "-DSDKCONFIG_DEFAULTS=" + ";".join(str(FIRMWARE_DIR / n) for n in (
                           "sdkconfig.defaults", "sdkconfig.defaults.esp32p4", "sdkconfig.ci.usj")), "build"]


def test_cache_key_follows_sources_sdkconfig_and_idf_version_only(tmp_path):
    fw = copy_firmware(tmp_path)
    base = cache_key("esp32p4", "uart", "v5.5.1", fw)
    assert cache_key("esp32p4", "uart", "v5.5.1", fw) == base
    assert cache_key("esp32p4", "uart", "v5.5.2", fw) != base
    assert cache_key("esp32p4", "usj", "v5.5.1", fw) != base
    (fw / "build_esp32p4_uart").mkdir()
    (fw / "build_esp32p4_uart" / "app.bin").write_bytes(b"x")
    (fw / "sdkconfig").write_text("generated")
    assert cache_key("esp32p4", "uart", "v5.5.1", fw) == base  # outputs do not feed the key
    src = fw / "main" / "app_main.cpp"
    src.write_text(src.read_text() + "\n// changed\n")
    changed = cache_key("esp32p4", "uart", "v5.5.1", fw)
    assert changed != base
    cfg = fw / "sdkconfig.defaults.esp32p4"
    cfg.write_text(cfg.read_text() + "CONFIG_X=y\n")
    assert cache_key("esp32p4", "uart", "v5.5.1", fw) not in (base, changed)


def fake_build_outputs(out: Path, chip: str = "esp32p4") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bootloader").mkdir(exist_ok=True)
    (out / "partition_table").mkdir(exist_ok=True)
    (out / "bootloader" / "bootloader.bin").write_bytes(b"B" * 100)
    (out / "partition_table" / "partition-table.bin").write_bytes(b"P" * 3072)
    (out / "yolo11_hil.bin").write_bytes(b"A" * 5000)
    (out / "flasher_args.json").write_text(json.dumps({
        "flash_settings": {"flash_mode": "qio", "flash_size": "16MB", "flash_freq": "80m"},
        "flash_files": {"0x2000": "bootloader/bootloader.bin", "0x9000": "partition_table/partition-table.bin",
                        "0x10000": "yolo11_hil.bin"},
        "bootloader": {"offset": "0x2000", "file": "bootloader/bootloader.bin"},
        "partition-table": {"offset": "0x9000", "file": "partition_table/partition-table.bin"},
        "app": {"offset": "0x10000", "file": "yolo11_hil.bin"},
        "extra_esptool_args": {"after": "hard_reset", "before": "default_reset", "stub": True, "chip": chip}}))


def test_build_runs_once_then_reuses_until_a_source_changes(tmp_path):
    fw = copy_firmware(tmp_path)
    env = fake_idf(tmp_path)
    calls = []

    def runner(cmd, **kwargs):
        calls.append(cmd)
        fake_build_outputs(Path(cmd[cmd.index("-B") + 1]))
        return subprocess.CompletedProcess(cmd, 0)

    first = build_firmware("esp32p4", "uart", fw, env=env, run=runner)
    again = build_firmware("esp32p4", "uart", fw, env=env, run=runner)
    assert (first.reused, again.reused, len(calls)) == (False, True, 1)
    assert again.key == first.key and again.path == fw / "build_esp32p4_uart"
    (fw / "main" / "transport.cpp").write_text("// edited\n")
    assert not build_firmware("esp32p4", "uart", fw, env=env, run=runner).reused
    assert len(calls) == 2


def test_failed_build_points_at_its_log(tmp_path):
    fw = copy_firmware(tmp_path)

    def runner(cmd, stdout, **kwargs):
        stdout.write("CMake Error: esp-dl not found\n")
        return subprocess.CompletedProcess(cmd, 1)

    with pytest.raises(HarnessError, match="esp-dl not found") as err:
        build_firmware("esp32p4", "uart", fw, env=fake_idf(tmp_path), run=runner)
    assert "hil_build.log" in str(err.value)


MODEL_PART = Partition("model", 1, 0x82, 0x310000, 0x10000)


def test_flash_plan_writes_only_what_changed(tmp_path):
    out = tmp_path / "build"
    fake_build_outputs(out)
    build = FirmwareBuild.from_dir(out, "esp32p4")
    pack = tmp_path / "model.pdl3"
    pack.write_bytes(b"PDL3" + b"\0" * 1000)
    stamps = tmp_path / "stamps"
    plan = plan_flash(build, "/dev/ttyUSB7", model_image=pack, model_part=MODEL_PART, device="board-1",
                      stamp_dir=stamps)
    assert [(r.name, r.offset) for r in plan.to_write] == [("bootloader", 0x2000), ("partition-table", 0x9000),
                                                           ("app", 0x10000), ("model", 0x310000)]
    cmd = plan.command(python="py")
    assert cmd[:14] == ["py", "-m", "esptool", "--chip", "esp32p4", "--port", "/dev/ttyUSB7", "--baud", "921600",
                        "--before", "default-reset", "--after", "hard-reset", "write-flash"]
    assert cmd[cmd.index("--flash-mode") + 1] == "qio" and cmd[-2:] == ["0x310000", str(pack)]

    ran = []
    assert run_flash(plan, run=lambda c, **k: ran.append(c) or subprocess.CompletedProcess(c, 0, "", ""))
    again = plan_flash(build, "/dev/ttyUSB7", model_image=pack, model_part=MODEL_PART, device="board-1",
                       stamp_dir=stamps)
    assert again.to_write == [] and not run_flash(again, run=lambda c, **k: pytest.fail("must not run"))
    pack.write_bytes(b"PDL3" + b"\1" * 1000)
    third = plan_flash(build, "/dev/ttyUSB7", model_image=pack, model_part=MODEL_PART, device="board-1",
                       stamp_dir=stamps)
    assert [r.name for r in third.to_write] == ["model"]
    other = plan_flash(build, "/dev/ttyUSB8", model_image=pack, model_part=MODEL_PART, device="board-2",
                       stamp_dir=stamps)
    assert len(other.to_write) == 4  # another board has its own stamp
    forced = plan_flash(build, "/dev/ttyUSB7", model_image=pack, model_part=MODEL_PART, device="board-1",
                        stamp_dir=stamps, force=True)
    assert len(forced.to_write) == 4


def test_failed_flash_forgets_the_touched_regions(tmp_path):
    out = tmp_path / "build"
    fake_build_outputs(out)
    build = FirmwareBuild.from_dir(out)
    stamps = tmp_path / "stamps"
    plan = plan_flash(build, "/dev/ttyUSB0", device="b", stamp_dir=stamps)
    run_flash(plan, run=lambda c, **k: subprocess.CompletedProcess(c, 0, "", ""))
    (out / "yolo11_hil.bin").write_bytes(b"new app")
    plan = plan_flash(build, "/dev/ttyUSB0", device="b", stamp_dir=stamps)
    with pytest.raises(HarnessError, match="Failed to connect"):
        run_flash(plan, run=lambda c, **k: subprocess.CompletedProcess(c, 2, "", "Failed to connect"))
    (out / "yolo11_hil.bin").write_bytes(b"A" * 5000)  # back to what the stamp had: still rewritten
    assert [r.name for r in plan_flash(build, "/dev/ttyUSB0", device="b", stamp_dir=stamps).to_write] == ["app"]


@pytest.mark.parametrize("content,message", [(b"EDL2" + b"\0" * 12, "not a PDL3 pack"),
                                             (b"PDL3" + b"\0" * 0x10000, "enlarge it")])
def test_bad_model_images_are_refused(tmp_path, content, message):
    out = tmp_path / "build"
    fake_build_outputs(out)
    pack = tmp_path / "model.bin"
    pack.write_bytes(content)
    with pytest.raises(HarnessError, match=message):
        plan_flash(FirmwareBuild.from_dir(out), "/dev/x", model_image=pack, model_part=MODEL_PART, device="d",
                   stamp_dir=tmp_path)


def test_prebuilt_dir_checks_chip_and_files(tmp_path):
    out = tmp_path / "build"
    fake_build_outputs(out, chip="esp32s3")
    with pytest.raises(HarnessError, match="built for esp32s3"):
        FirmwareBuild.from_dir(out, "esp32p4")
    (out / "yolo11_hil.bin").unlink()
    with pytest.raises(HarnessError, match="incomplete"):
        FirmwareBuild.from_dir(out, "esp32s3")
    with pytest.raises(HarnessError, match="flasher_args.json"):
        FirmwareBuild.from_dir(tmp_path)


@pytest.mark.requires_idf
@pytest.mark.slow
def test_real_build_for_esp32p4():
    """Builds the firmware with the exported ESP-IDF (CI build job or a developer machine)."""
    if not os.environ.get("IDF_PATH"):
        pytest.skip("ESP-IDF not exported (IDF_PATH unset): see docs/ci-examples for the build job")
    build = build_firmware("esp32p4", "uart")
    assert (build.path / "flasher_args.json").is_file()
