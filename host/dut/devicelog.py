"""Everything the device printed outside protocol records, streamed to a file in the session's report folder.

    log = attach_device_log(dut, report_dir)      # right after the DUT is opened; any DUT kind
    provenance["device_log"] = log.link           # "device.log" (or "gw0/device.log" under pytest-xdist)

The client keeps only the last lines in memory (`client.log`, shown in every failure message); this file is
the whole story: first the lines the client had read before the log was attached (the boot output), then
every line as it arrives, flushed at once, each with the host's wall-clock time. Lines the harness adds start
with `[host]` (a port lost and reopened, a decoded panic backtrace). Protocol records are not in it: what they
carried is in results.jsonl.

The file is bounded (`max_bytes`): past the limit it says so in one line, counts what it drops and, when the
DUT is closed, appends the count and the last dropped lines. Writing never fails a test: a disk error stops
the log, and `DeviceLog.error` says why.
"""

from __future__ import annotations

import datetime
from collections import deque
from pathlib import Path

from host.dut.dut import Dut

DEFAULT_NAME = "device.log"
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
KEEP_DROPPED_LINES = 200


def _now() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]


class DeviceLog:
    """A line sink for `ProtocolClient.log` (host.dut.client.DeviceLines) writing to `path`."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, header: str = "", append: bool = False,
                 link: str | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.link = link or self.path.name  # the path a report in the session's report folder links
        self.written = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self.error: str | None = None
        self._dropped_tail: deque[str] = deque(maxlen=KEEP_DROPPED_LINES)
        self._full = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a" if append else "w", encoding="utf-8", errors="replace", newline="\n")
        if append:
            self.written = self.path.stat().st_size
        if header:
            self._emit(f"# {header}\n")

    @property
    def closed(self) -> bool:
        return self._fh is None

    def write(self, line: str) -> None:
        """One device line (without its line end), stamped with the host time; never raises."""
        if self._fh is None:
            return
        text = f"{_now()} {line}\n"
        size = len(text.encode("utf-8", "replace"))
        if self._full or self.written + size > self.max_bytes:
            if not self._full:
                self._full = True
                self._emit(f"{_now()} [host] --- {self.path.name} reached its limit of {self.max_bytes} bytes: "
                           "further device output is counted, not saved (the count and the last "
                           f"{KEEP_DROPPED_LINES} lines follow when the DUT is closed) ---\n")
            self.dropped_lines += 1
            self.dropped_bytes += size
            self._dropped_tail.append(text)
            return
        self._emit(text)

    def note(self, text: str) -> None:
        """A line of the harness's own (outside the size limit, so the story of the session stays readable)."""
        if self._fh is not None:
            self._emit(f"{_now()} [host] {text}\n")

    def close(self) -> None:
        if self._fh is None:
            return
        if self.dropped_lines:
            self._emit(f"{_now()} [host] --- truncated: {self.dropped_lines} lines ({self.dropped_bytes} bytes) of "
                       f"device output were not saved after the limit of {self.max_bytes} bytes; the last "
                       f"{len(self._dropped_tail)} of them: ---\n")
            for text in self._dropped_tail:
                self._emit(text)
        self.note("the DUT was closed")
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _emit(self, text: str) -> None:
        assert self._fh is not None
        try:
            self._fh.write(text)
            self._fh.flush()
        except OSError as exc:  # a full disk must not fail the session: stop logging, say so in the provenance
            self.error = f"{self.path}: writing stopped ({exc.strerror or exc})"
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError:
                pass
            return
        self.written += len(text.encode("utf-8", "replace"))


def attach_device_log(dut: Dut, folder: Path, report_root: Path | None = None, *, name: str = DEFAULT_NAME,
                      max_bytes: int = DEFAULT_MAX_BYTES, append: bool = False) -> DeviceLog:
    """Stream `dut`'s device output to `folder/name` from now on, after what its client has already read.

    `report_root` is the report folder the session's report.html and provenance live in (a pytest-xdist
    worker writes in a subfolder of it); `DeviceLog.link` is the file's path relative to it. The log is
    closed with the DUT. A DUT whose client is replaced (a simulated DUT's reset, a farm's take-over) needs
    `attach_device_log(..., append=True)` again for the new client."""
    folder = Path(folder)
    path = folder / name
    link = path.relative_to(report_root).as_posix() if report_root is not None else name
    log = DeviceLog(path, max_bytes=max_bytes, append=append, link=link,
                    header=f"yolo11-hil device log: {dut.kind} DUT, target {dut.target}, port {dut.port}; started "
                           f"{datetime.datetime.now().isoformat(timespec='seconds')}; host time on every line; "
                           "protocol records are not included (results.jsonl has them)")
    client = dut.client
    earlier = list(client.log)
    if earlier:
        log.note(f"{len(earlier)} lines the client read before this log was attached (the boot output); "
                 "their time is when they were written here:")
        for line in earlier:
            log.write(line)
        log.note("--- from here on, lines as they arrive ---")
    client.log.sink = log.write
    dut.close_hooks.append(log.close)
    return log
