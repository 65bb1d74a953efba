"""Partition layout and sdkconfig chains of the firmware, parsed on the host."""

from __future__ import annotations

import pytest

from host.errors import HarnessError
from host.firmware.partitions import (
    FIRMWARE_DIR,
    model_partition,
    parse_partition_csv,
    partition_table,
    read_sdkconfig,
    sdkconfig_defaults,
)

# A 640x640 YOLO11n .espdl with esp-ppq test values: ~3.0 MB parameters (Espressif's zoo model is
# 2,986,704 bytes without test values) + the int8 test input (640*640*3) + the six int8 test outputs.
YOLO11N_640_WITH_TEST_VALUES = 2_986_704 + 640 * 640 * 3 + (80 * 80 + 40 * 40 + 20 * 20) * (64 + 80)


@pytest.mark.parametrize("target", ["esp32p4", "esp32s3"])
@pytest.mark.parametrize("config", ["uart", "usj"])
def test_model_partition_fits_a_640_model_with_test_values(target, config):
    part = model_partition(target, config)
    assert part.size >= YOLO11N_640_WITH_TEST_VALUES * 1.05  # with some headroom
    assert part.offset % 0x1000 == 0


@pytest.mark.parametrize("target,flash_mb,csv", [("esp32p4", 16, "partitions.csv"), ("esp32s3", 8, "partitions_8mb.csv")])
def test_partition_tables_fit_flash_and_follow_the_sdkconfig(target, flash_mb, csv):
    cfg = read_sdkconfig(sdkconfig_defaults(target, "uart"))
    assert cfg["CONFIG_PARTITION_TABLE_CUSTOM_FILENAME"] == csv
    parts, flash = partition_table(target, "uart")
    assert flash == flash_mb << 20
    assert [p.name for p in parts] == ["nvs", "phy_init", "factory", "model"]
    assert parts[0].offset == int(cfg["CONFIG_PARTITION_TABLE_OFFSET"], 0) + 0x1000
    assert all(a.end <= b.offset for a, b in zip(parts, parts[1:]))
    assert parts[-1].end <= flash


def test_target_defaults_carry_the_example_performance_settings():
    p4 = read_sdkconfig(sdkconfig_defaults("esp32p4", "uart"))
    for key in ("CONFIG_SPIRAM_SPEED_200M", "CONFIG_SPIRAM_XIP_FROM_PSRAM", "CONFIG_CACHE_L2_CACHE_256KB",
                "CONFIG_CACHE_L2_CACHE_LINE_128B", "CONFIG_COMPILER_OPTIMIZATION_PERF", "CONFIG_ESPTOOLPY_FLASHSIZE_16MB"):
        assert p4[key] == "y", key
    s3 = read_sdkconfig(sdkconfig_defaults("esp32s3", "usj"))
    assert s3["CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG"] == "y"
    # A 26 s single inference on S3 must not trip the task watchdog's idle checks.
    assert s3["CONFIG_ESP_TASK_WDT_CHECK_IDLE_TASK_CPU0"] == "n" and s3["CONFIG_ESP_TASK_WDT_CHECK_IDLE_TASK_CPU1"] == "n"
    uart = read_sdkconfig(sdkconfig_defaults("esp32p4", "uart"))
    assert uart["CONFIG_ESP_CONSOLE_UART_CUSTOM"] == "y" and uart["CONFIG_ESP_CONSOLE_UART_BAUDRATE"] == "2000000"


def test_empty_offsets_are_placed_and_aligned_like_gen_esp32part():
    parts = parse_partition_csv("nvs, data, nvs, , 0x6000\nphy, data, phy, , 4K\nf, app, factory, , 1M\n"
                                "m, data, 0x99, , 3M\n", table_offset=0x9000)
    assert [(p.offset, p.size) for p in parts] == [(0xA000, 0x6000), (0x10000, 0x1000), (0x20000, 0x100000),
                                                   (0x120000, 0x300000)]
    assert parts[3].subtype == 0x99


@pytest.mark.parametrize("csv", [
    "a, data, nvs, 0x8000, 4K\n",                       # overlaps the table
    "a, data, nvs, 0xA000, 8K\nb, data, nvs, 0xB000, 4K\n",  # overlaps a
    "a, app, factory, 0x11000, 1M\n",                  # app not 64K aligned
    "a, data, nvs, , \n",                              # no size
    "a, data, nvs, , 4X\n",                            # bad size
    "a, data, nvs, , 4K\na, data, nvs, , 4K\n",        # duplicate name
    "a, code, nvs, , 4K\n",                            # unknown type
])
def test_bad_partition_tables_are_rejected_with_a_reason(csv):
    with pytest.raises(HarnessError, match="partitions.csv"):
        parse_partition_csv(csv, table_offset=0x9000)


def test_unknown_config_names_the_known_ones():
    with pytest.raises(HarnessError, match="uart") as err:
        sdkconfig_defaults("esp32p4", "jtag")
    assert "usj" in str(err.value)


def test_firmware_project_is_complete():
    for rel in ("CMakeLists.txt", "main/CMakeLists.txt", "main/idf_component.yml", "main/app_main.cpp",
                "components/hil_protocol/CMakeLists.txt", "sdkconfig.ci.uart", "sdkconfig.ci.usj"):
        assert (FIRMWARE_DIR / rel).is_file(), rel
    manifest = (FIRMWARE_DIR / "main" / "idf_component.yml").read_text()
    assert 'version: "3.3.9"' in manifest  # exactly the release the host emulates (host.chip.releases)


def test_cli_prints_the_partition_layout(capsys):
    import argparse

    from host.cli import firmware as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["partitions", "--target", "esp32s3", "--config", "usj"])) == 0
    out = capsys.readouterr().out
    assert "8 MB flash" in out and "model" in out and "0x250000" in out


@pytest.mark.parametrize("target", ["esp32p4", "esp32s3"])
def test_firmware_links_the_libm_the_host_models(target):
    """host/chip/libm.py reproduces newlib's expf/logf; ESP-IDF 6 would otherwise link picolibc."""
    for config in ("uart", "usj"):
        assert read_sdkconfig(sdkconfig_defaults(target, config)).get("CONFIG_LIBC_NEWLIB") == "y"
