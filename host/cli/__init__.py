"""The `python -m host` command line: a table of subcommands, each owned by its concern's module.

Modules are imported only when their command runs, so `python -m host espdl info` does not pay
for importing torch. Each command module exposes `add_arguments(parser)` and `run(args) -> int`.
A bad input ends the command in one line, `error: ...` naming the input and the fix, exit 2: commands
raise HarnessError (checking their inputs before any slow work starts); a file that cannot be read or
written (an OSError with a file name) is reported the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from typing import Iterator

from host.errors import HarnessError

# command name -> (module path, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "quantize": ("host.cli.quantize", "export and quantize a YOLO11n model to .espdl (cached)"),
    "analyse": ("host.cli.analyse", "per-layer quantization error analysis of a model"),
    "preprocess": ("host.cli.preprocess", "ESP-DL-exact letterbox preprocess of one image"),
    "reference": ("host.cli.reference", "host reference detection (PPQ simulation) for one image"),
    "espdl": ("host.cli.espdl", "inspect, run, check and pack .espdl files"),
    "firmware": ("host.cli.firmware", "firmware partitions, build, flash plan and flash"),
    "latency": ("host.cli.latency", "latency baselines, the regression gate, side-by-side comparison"),
    "recipes": ("host.cli.recipes", "quantization recipes (float, int8, mixed, tutorial, qat) compared by accuracy"),
    "accuracy": ("host.cli.accuracy", "accuracy baselines and gate, the figures of an accuracy run"),
    "boards": ("host.cli.boards", "scan the connected boards (chip, revision, MAC) into a hardware map"),
    "report": ("host.cli.report", "merge the report folders of CI shards into one report"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m host", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        build_parser().parse_args(argv)  # prints help or the "invalid choice" error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"python -m host {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except HarnessError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # not a file the command was given or writes: a bug or the environment
            raise
        print(f"error: cannot use {exc.filename} ({exc.strerror or exc}); check the path and its permissions",
              file=sys.stderr)
        return 2


def one_line(text: str) -> str:
    """A message that spans lines (e.g. one quoted from a library) as the single line the CLI prints."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Libraries that report progress on stdout (esptool; esp-ppq prints a banner when imported) write to stderr
    inside this block, so stdout keeps only the command's result (e.g. `--json`), also for native code."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (an embedding host): nothing to protect
        yield
        return
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
