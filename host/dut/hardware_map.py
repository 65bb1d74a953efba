"""A hardware map: the boards (and simulated boards) a runner may use, and which one this process holds.

Twister-style YAML, written by hand or by `python -m host boards scan --out boards.yaml`:

    boards:
      - id: p4-lab-1              # unique: the lock name
        kind: board               # board | sim | remote
        target: esp32p4
        revision: 100             # optional, major*100+minor (checked against the chip's answer)
        port: /dev/ttyACM0        # board: the serial port, or
        serial_number: F4:12:FA   # board: found among the USB ports by serial number
        firmware_config: uart     # optional: the entry serves only this firmware config
      - id: p4-remote
        kind: remote              # a serial port on another machine (RFC2217 through ser2net), flashed
        target: esp32p4           #   with esptool over the URL when it is a board
        url: rfc2217://lab-host:4001?ign_set_control
        place: p4-lab-2           # or a labgrid place: acquired through the coordinator, released after
        serves: board             # board | sim (what sits behind the port)

Several pytest-xdist workers share one map: each locks one matching entry for its session with a file
lock keyed by the entry's id (released when the worker ends, also when it dies), so no two workers
ever drive the same board.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from host.errors import HarnessError

KINDS = ("board", "sim", "remote")
LOCK_DIR = Path(os.environ.get("HIL_LOCK_DIR", Path(tempfile.gettempdir()) / "yolo11-hil-locks"))


@dataclass(frozen=True)
class MapEntry:
    id: str
    kind: str
    target: str
    revision: int | None = None
    port: str | None = None
    serial_number: str | None = None
    firmware_config: str | None = None
    url: str | None = None
    place: str | None = None
    serves: str = "board"
    faults: str | None = None  # sim only: a fault plan (host/dut/sim/faults.py), for the harness's own farm tests

    def describe(self) -> str:
        where = self.port or self.serial_number or self.url or (f"labgrid place {self.place}" if self.place else "")
        return f"{self.id} ({self.kind} {self.target}{', ' + where if where else ''})"


def load_map(path: str | Path) -> list[MapEntry]:
    """Parse and check a hardware map; a HarnessError names the entry and the field that is wrong."""
    import yaml

    source = Path(path)
    try:
        doc = yaml.safe_load(source.read_text())
    except FileNotFoundError:
        raise HarnessError(f"--hardware-map {source} does not exist; write one or run "
                           "`python -m host boards scan --out boards.yaml`") from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise HarnessError(f"--hardware-map {source} is not readable YAML ({first}); fix it or regenerate it "
                           "with `python -m host boards scan --out boards.yaml`") from None
    boards = doc.get("boards") if isinstance(doc, dict) else None
    if not isinstance(boards, list) or not boards:
        raise HarnessError(f"--hardware-map {source} has no 'boards:' list; see host/dut/hardware_map.py for the "
                           "format")
    known = {f.name for f in fields(MapEntry)}
    entries: list[MapEntry] = []
    for i, raw in enumerate(boards):
        where = f"--hardware-map {source}: entry {i + 1}"
        if not isinstance(raw, dict):
            raise HarnessError(f"{where} is not a mapping of fields; write e.g. '- id: p4-1' with kind/target/port")
        unknown = sorted(set(raw) - known)
        if unknown:
            raise HarnessError(f"{where} has unknown field(s) {unknown}; known: {', '.join(sorted(known))}")
        missing = [k for k in ("id", "kind", "target") if not raw.get(k)]
        if missing:
            raise HarnessError(f"{where} lacks {', '.join(missing)}; every entry needs id, kind and target")
        entry = MapEntry(**{k: (str(v) if k not in ("revision",) and v is not None else v) for k, v in raw.items()})
        if entry.kind not in KINDS:
            raise HarnessError(f"{where} ({entry.id}) has kind {entry.kind!r}; choose one of {', '.join(KINDS)}")
        if entry.kind == "board" and not (entry.port or entry.serial_number):
            raise HarnessError(f"{where} ({entry.id}) is a board without port or serial_number; give one")
        if entry.kind == "remote" and not (entry.url or entry.place):
            raise HarnessError(f"{where} ({entry.id}) is remote without url or place; give the RFC2217 URL or the "
                               "labgrid place")
        if entry.serves not in ("board", "sim"):
            raise HarnessError(f"{where} ({entry.id}) serves {entry.serves!r}; choose board or sim")
        if entry.revision is not None and not isinstance(entry.revision, int):
            raise HarnessError(f"{where} ({entry.id}) has revision {entry.revision!r}; give major*100+minor, e.g. 100")
        entries.append(entry)
    ids = [e.id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise HarnessError(f"--hardware-map {source} names {duplicates} more than once; ids must be unique")
    return entries


def matching(entries: list[MapEntry], target: str, firmware_config: str | None = None) -> list[MapEntry]:
    return [e for e in entries if e.target == target and (e.firmware_config in (None, firmware_config))]


@dataclass
class HeldEntry:
    """A map entry this process holds; the lock goes when `release` is called or the process ends."""

    entry: MapEntry
    lock: Any  # None for a simulated board shared with another session (nothing physical to share)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def hold_one(entries: list[MapEntry], target: str, firmware_config: str | None, worker: str = "main",
             lock_dir: Path | None = None, run_id: str = "", wait_s: float = 0.0) -> HeldEntry:
    """Lock the first free entry for `target` (preferring the worker's own position in the list), skipping
    entries marked dead in this run. With `wait_s`, wait that long for one to be released (a worker that
    replaces one whose board died waits for a board another worker has finished with)."""
    import time

    from filelock import FileLock, Timeout

    candidates = matching(entries, target, firmware_config)
    if not candidates:
        raise HarnessError(f"the hardware map has no entry for {target}"
                           + (f" with firmware config {firmware_config}" if firmware_config else "")
                           + "; add one or pass another --target")
    directory = lock_dir or LOCK_DIR
    directory.mkdir(parents=True, exist_ok=True)
    start = _worker_index(worker) % len(candidates)
    deadline = time.monotonic() + wait_s
    while True:
        alive = [e for e in candidates[start:] + candidates[:start] if not is_dead(e, run_id, directory)]
        if not alive:
            raise HarnessError(f"every {target} entry of the hardware map died in this run "
                               f"({', '.join(e.id for e in candidates)}); see the report for each board's failure")
        for entry in alive:
            lock = FileLock(str(directory / f"{_safe(entry.id)}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            return HeldEntry(entry, lock)
        sims = [e for e in alive if e.kind == "sim"]
        if sims and wait_s:  # a simulated board is a process per session: a second session may run one too
            return HeldEntry(sims[0], None)
        if time.monotonic() >= deadline:
            raise HarnessError(f"all {len(alive)} {target} entries of the hardware map are held by other sessions "
                               f"({', '.join(e.id for e in alive)}); run fewer workers (-n) or add boards")
        time.sleep(1.0)


def mark_dead(entry: MapEntry, run_id: str, reason: str, lock_dir: Path | None = None) -> None:
    """Record that `entry` died in run `run_id`, so no later session of the run takes it again."""
    directory = lock_dir or LOCK_DIR
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{_safe(entry.id)}.dead").write_text(f"{run_id}\n{reason}\n")


def is_dead(entry: MapEntry, run_id: str, lock_dir: Path | None = None) -> bool:
    marker = (lock_dir or LOCK_DIR) / f"{_safe(entry.id)}.dead"
    try:
        return bool(run_id) and marker.read_text().splitlines()[0] == run_id
    except (OSError, IndexError):
        return False


def _worker_index(worker: str) -> int:
    digits = "".join(ch for ch in worker if ch.isdigit())
    return int(digits) if digits else 0


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
