"""The board backend: get the harness firmware built (or a CI build), flash what changed, boot, talk serial.

Building, partition layout and the flash plan belong to `host.firmware`; this module only strings
them together for a session: find or build the firmware, put the model pack at the `model`
partition, run esptool for the regions that changed, then keep the port open for the whole
session (unlike pytest-embedded's function-scoped `dut`, no test resets the board).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from host.firmware import FirmwareBuild, IdfMissing, build_firmware, model_partition, plan_flash
from host.firmware.build import FIRMWARE_DIR, build_dir
from host.firmware.flash import run_flash


def locate_build(target: str, config: str, firmware_dir: Path = FIRMWARE_DIR) -> FirmwareBuild:
    """A build from ESP-IDF when it is exported, else an existing build directory (e.g. a CI artifact),
    else a skip that says exactly what is missing."""
    try:
        return build_firmware(target, config, firmware_dir)
    except IdfMissing as missing:
        existing = build_dir(target, config, firmware_dir)
        if (existing / "flasher_args.json").is_file():
            return FirmwareBuild.from_dir(existing, target, config)
        pytest.skip(f"no firmware build for {target}/{config} at {existing} and no ESP-IDF to make one: {missing}")


def console_baud(build: FirmwareBuild) -> int:
    import json

    try:
        sdkconfig = json.loads((build.path / "config" / "sdkconfig.json").read_text())
    except (OSError, ValueError):
        return 115200
    return int(sdkconfig.get("ESP_CONSOLE_UART_BAUDRATE", 115200))


def open_device(choice, target: str, model_image: Path, config):
    """Flash (what changed) and open a board. Emulator kinds run the same build under pytest-embedded's
    `idf,qemu` / `idf,espemu` services, which this harness does not start itself."""
    from host.dut.client import ProtocolClient
    from host.dut.dut import Dut
    from host.dut.transport import SerialTransport

    firmware_config = config.getoption("firmware_config")
    build = locate_build(target, firmware_config)
    if choice.kind != "board":
        pytest.skip(f"--dut {choice.kind}: run the build at {build.path} under pytest-embedded "
                    f"(--embedded-services idf,{choice.kind}); this harness drives boards and the simulated DUT")
    plan = plan_flash(build, choice.port, model_image=model_image,
                      model_part=model_partition(target, firmware_config),
                      baud=int(os.environ.get("ESPBAUD", "921600")))
    run_flash(plan)
    transport = SerialTransport(choice.port, baudrate=console_baud(build))
    client = ProtocolClient(transport, timeout_s=config.getoption("dut_timeout"))
    port = transport.port
    port.dtr, port.rts = False, True  # EN low on Espressif dev kits: hold the chip in reset
    time.sleep(0.1)
    port.rts = False  # release: the firmware boots and prints its boot record
    boot = client.wait_for_boot(15.0)
    return Dut("board", client, target, choice.port, boot=boot)
