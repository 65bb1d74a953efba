"""Results written incrementally: one JSON line per result as soon as it exists, so a crash loses nothing.

`results.jsonl` starts with the session record (DUT kind, provenance) and gets one line per test
result; `results.json` is the same data gathered at the end of the session. With `resume=True` the
file is the journal of an earlier, interrupted run: its records are kept (a line cut short by the kill
is dropped) and the new session's lines are appended after them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of a results.jsonl (a last line cut short by a kill is skipped)."""
    records = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class ResultsWriter:
    def __init__(self, report_dir: Path, session: dict[str, Any], resume: bool = False,
                 tags: dict[str, Any] | None = None) -> None:
        self.dir = Path(report_dir)
        self.tags = dict(tags or {})  # added to every record (e.g. the board that produced it)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "results.jsonl"
        self.session = session
        self.earlier: list[dict[str, Any]] = read_journal(self.path) if resume else []
        self.records: list[dict[str, Any]] = []
        tmp = self.path.with_suffix(".jsonl.tmp")  # rewritten whole (a torn last line is dropped), then renamed:
        with open(tmp, "w") as handle:  # a kill now leaves the earlier journal as it was
            for record in self.earlier:
                handle.write(json.dumps(record, default=str) + "\n")
            handle.write(json.dumps({"kind": "session", "time": time.time(), **session}, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def add(self, kind: str, test: str, **data: Any) -> dict[str, Any]:
        record = {"kind": kind, "test": test, "time": time.time(), **self.tags, **data}
        self.records.append(record)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return record

    def finish(self) -> Path:
        out = self.dir / "results.json"
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"session": self.session, "results": self.records}, indent=1, default=str))
        os.replace(tmp, out)
        return out
