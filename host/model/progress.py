"""Stage progress for long host jobs: one line when a stage starts and one with its time when it ends.

Plain lines (not redrawn bars) so CI logs stay readable; ESP-PPQ draws its own bars for
calibration inside the quantize stage.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    started = time.perf_counter()
    print(f"[host] {name} ...", file=sys.stderr, flush=True)
    try:
        yield
    except BaseException:
        print(f"[host] {name} failed after {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        raise
    print(f"[host] {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
