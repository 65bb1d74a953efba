"""`python -m host firmware ...`: show the partition layout, build the firmware, plan or run a flash."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from host.errors import HarnessError
from host.firmware.build import FirmwareBuild, build_dir, build_firmware
from host.firmware.flash import plan_flash, run_flash
from host.firmware.partitions import model_partition, partition_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["partitions", "build", "plan", "flash"])
    parser.add_argument("--target", default="esp32p4", choices=["esp32p4", "esp32s3"])
    parser.add_argument("--config", default="uart", help="sdkconfig.ci.<config> (uart, usj, rev1)")
    parser.add_argument("--build-dir", type=Path, help="a prebuilt build directory (e.g. a CI artifact)")
    parser.add_argument("--port", help="serial port of the board (plan/flash)")
    parser.add_argument("--baud", type=int, default=921600, help="esptool baud rate")
    parser.add_argument("--model-pack", type=Path, help="PDL3 pack to write to the model partition")
    parser.add_argument("--force", action="store_true", help="ignore the flash stamp; let esptool compare each region")


def run(args: argparse.Namespace) -> int:
    if args.action == "partitions":
        parts, flash = partition_table(args.target, args.config)
        print(f"{args.target}/{args.config}: {flash >> 20} MB flash")
        for p in parts:
            print(f"  {p.name:10s} type {p.type:#04x} subtype {p.subtype:#04x} offset {p.offset:#08x} size {p.size:#08x}"
                  f" ({p.size / 1048576:.2f} MB)")
        return 0
    if args.action == "build":
        build = build_firmware(args.target, args.config)
        print(f"{'reused' if build.reused else 'built'} {build.path} (key {build.key[:16]})")
        return 0
    if not args.port:
        raise HarnessError(f"firmware {args.action} needs the board's serial port: pass --port "
                           "(e.g. --port /dev/ttyUSB0)")
    if args.model_pack is not None and not args.model_pack.is_file():
        raise HarnessError(f"--model-pack {args.model_pack} does not exist; pack the model first with "
                           "`python -m host espdl pack models.bin yolo11n=model.espdl`")
    folder = args.build_dir or build_dir(args.target, args.config)
    try:
        build = FirmwareBuild.from_dir(folder, args.target, args.config)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{folder} is a damaged ESP-IDF build directory (a JSON file in it does not parse: "
                           f"{exc}); rebuild the firmware (python -m host firmware build) or download the CI "
                           "artifact again") from None
    plan = plan_flash(build, args.port, model_image=args.model_pack,
                      model_part=model_partition(args.target, args.config) if args.model_pack else None,
                      baud=args.baud, force=args.force)
    for region in plan.regions:
        state = "write" if region in plan.to_write else "unchanged"
        print(f"  {region.offset:#08x} {region.name:16s} {region.size:9d} B  {region.sha256[:16]}  {state}")
    if args.action == "plan":
        print(" ".join(plan.command()) if plan.to_write else "nothing to write")
        return 0
    print("flashed" if run_flash(plan) else "board already up to date")
    return 0
