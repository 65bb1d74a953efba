"""Results written incrementally: one JSON line per result as soon as it exists, so a crash loses nothing.

`results.jsonl` starts with the session record (DUT kind, provenance) and gets one line per test
result; `results.json` is the same data gathered at the end of the session.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class ResultsWriter:
    def __init__(self, report_dir: Path, session: dict[str, Any]) -> None:
        self.dir = Path(report_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "results.jsonl"
        self.session = session
        self.records: list[dict[str, Any]] = []
        with open(self.path, "w") as handle:
            handle.write(json.dumps({"kind": "session", "time": time.time(), **session}, default=str) + "\n")

    def add(self, kind: str, test: str, **data: Any) -> dict[str, Any]:
        record = {"kind": kind, "test": test, "time": time.time(), **data}
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
