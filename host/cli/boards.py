"""`python -m host boards scan`: list the connected boards (port, USB serial number, chip, revision, MAC) and
write them as a hardware map for `pytest --hardware-map=boards.yaml`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("scan", help="probe every Espressif / dev-kit USB serial port with esptool (the board is "
                                    "reset into its app afterwards)")
    p.add_argument("--out", type=Path, default=None, help="write the hardware map here (e.g. boards.yaml)")
    p.add_argument("--json", action="store_true", help="print one JSON object (boards, ports ignored, the map)")
    p.add_argument("--port", action="append", default=None,
                   help="probe only this port (repeatable; any pyserial URL, e.g. rfc2217://host:4001)")
    p.add_argument("--baud", type=int, default=115200, help="ROM loader baud rate for the probe")
    p.add_argument("--attempts", type=int, default=3, help="esptool connection attempts per port")


def run(args: argparse.Namespace) -> int:
    from functools import partial

    from host.dut.hardware_map import load_map
    from host.dut.scan import esptool_chip, hardware_map, map_text, scan
    from host.cli import stdout_to_stderr
    from host.errors import HarnessError

    if args.attempts < 1 or args.baud < 1:
        raise HarnessError("--attempts and --baud must be positive; e.g. --attempts 3 --baud 115200")
    with stdout_to_stderr():
        result = scan(open_chip=partial(esptool_chip, baud=args.baud, attempts=args.attempts), ports=args.port)
    if args.out is not None:
        args.out.write_text(map_text(result))
        if hardware_map(result)["boards"]:
            load_map(args.out)  # what pytest --hardware-map will read: refuse to leave a map it would refuse
    if args.json:
        print(json.dumps({**result.to_json(), "map": hardware_map(result),
                          "out": str(args.out) if args.out else None}))
    else:
        for board in result.boards:
            if board.ok:
                print(f"{board.port}: {board.chip} {board.chip_description}, revision {board.revision}, "
                      f"MAC {board.mac}, USB serial {board.serial_number or '-'} ({board.usb or 'given port'})")
            else:
                print(f"{board.port}: NOT READ - {board.error}")
        if not result.boards:
            print("no board found (no serial port with an Espressif or dev-kit USB id); connect one, or name a port "
                  "with --port")
        if args.out is not None:
            count = len(hardware_map(result)["boards"])
            print(f"wrote {args.out} ({count} board{'s' if count != 1 else ''}); use it with "
                  f"`pytest --hardware-map={args.out} -n {max(count, 1)}`")
    return 0 if all(b.ok for b in result.boards) else 1
