"""Streaming decoders: turn arbitrary byte chunks into protocol events, for both ends of the link.

`RecordDecoder` is the host side (device output: records mixed with log text).
`RequestDecoder` is the device side (host output: request lines and binary chunk frames), used by
the simulated DUT; firmware/components/hil_protocol/src/decoder.cpp runs the same algorithm on
the chip. Both keep bounded buffers and resynchronise after any corruption, so a bad byte costs
at most the frame it hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from host.protocol.wire import (
    CHUNK_HEADER,
    CHUNK_HEADER_SIZE,
    CHUNK_MAGIC,
    CHUNK_OVERHEAD,
    MAX_CHUNK_PAYLOAD,
    MAX_RECORD_LINE,
    MAX_REQUEST_LINE,
    SENTINEL,
    Chunk,
    WireError,
    crc32,
    decode_line,
)


@dataclass(frozen=True)
class Record:
    """A valid record (device -> host) or request (host -> device) line."""

    body: dict[str, Any]
    raw: bytes


@dataclass(frozen=True)
class LogLine:
    """Device output that is not a record: kept for the log, ignored by the protocol."""

    text: bytes


@dataclass(frozen=True)
class BadRecord:
    """Something that started like a record but failed its checks (CRC, JSON, length)."""

    raw: bytes
    reason: str


@dataclass(frozen=True)
class BadFrame:
    """A request line or chunk frame that failed its checks (device side).

    `upload_id`/`seq` come from an unverified chunk header (None for lines): a hint for a NAK only.
    """

    reason: str
    upload_id: int | None = None
    seq: int | None = None
    line: bool = False  # a request line (not a chunk frame) was rejected


HostEvent = Union[Record, LogLine, BadRecord]
DeviceEvent = Union[Record, Chunk, BadFrame]


class RecordDecoder:
    """Host side: split device output into records, log lines and corrupted records.

    Lines end at LF. The sentinel may appear anywhere in a line (a log line without its newline can
    precede a record); text before it is reported as log. Lines longer than `max_line` are cut into
    log pieces (or a BadRecord, if a sentinel was seen) so memory stays bounded.
    """

    def __init__(self, max_line: int = MAX_RECORD_LINE) -> None:
        self._buf = bytearray()
        self._max_line = max_line
        self._overflow = False  # inside an oversize line: drop until the next LF

    def feed(self, data: bytes) -> list[HostEvent]:
        self._buf += data
        events: list[HostEvent] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self._max_line:
                    events.extend(self._oversize())
                break
            line = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            if self._overflow:  # the tail of an oversize record: part of that BadRecord
                self._overflow = False
                continue
            events.extend(self._line(line))
        return events

    def flush(self) -> list[HostEvent]:
        """End of stream: report an unterminated tail."""
        tail, self._buf = bytes(self._buf), bytearray()
        if not tail or self._overflow:
            self._overflow = False
            return []
        return self._split_bad(tail, "record not terminated by a newline")

    def _oversize(self) -> list[HostEvent]:
        """An unterminated line grew past the limit: report it and forget its bytes."""
        piece = bytes(self._buf)
        self._buf.clear()
        if self._overflow:
            return []
        if SENTINEL in piece:
            self._overflow = True
            return self._split_bad(piece, f"record longer than {self._max_line} bytes")
        return [LogLine(piece)]

    @staticmethod
    def _split_bad(piece: bytes, reason: str) -> list[HostEvent]:
        first = piece.find(SENTINEL)
        if first < 0:
            return [LogLine(piece)]
        prefix: list[HostEvent] = [LogLine(piece[:first])] if first > 0 else []
        return prefix + [BadRecord(piece[first:], reason)]

    @staticmethod
    def _line(line: bytes) -> list[HostEvent]:
        first = line.find(SENTINEL)
        if first < 0:
            return [LogLine(line)]
        start = first
        reason = ""
        while start >= 0:
            try:
                body = decode_line(line[start:])
            except WireError as exc:
                reason = reason or str(exc)
                start = line.find(SENTINEL, start + 1)
                continue
            events: list[HostEvent] = []
            if start > 0:
                events.append(LogLine(line[:start]))
            events.append(Record(body, line[start:]))
            return events
        prefix: list[HostEvent] = [LogLine(line[:first])] if first > 0 else []
        return prefix + [BadRecord(line[first:], reason)]


def _is_line_byte(byte: int) -> bool:
    return 0x20 <= byte <= 0x7E or byte == 0x0D


class RequestDecoder:
    """Device side: split host input into request lines and binary upload chunks.

    Anything before a sentinel or chunk magic is skipped (counted in `skipped`). After a bad frame
    the scan restarts one byte after that frame's start, so a frame hidden inside a corrupted one
    is still found. `max_payload` bounds a chunk (set it to the negotiated chunk size).
    """

    def __init__(self, max_payload: int = MAX_CHUNK_PAYLOAD, max_line: int = MAX_REQUEST_LINE) -> None:
        self._buf = bytearray()
        self.max_payload = max_payload
        self._max_line = max_line
        self.skipped = 0

    def feed(self, data: bytes) -> list[DeviceEvent]:
        self._buf += data
        events: list[DeviceEvent] = []
        while self._step(events):
            pass
        return events

    def _drop(self, count: int) -> None:
        del self._buf[:count]

    def _step(self, events: list[DeviceEvent]) -> bool:
        """Consume at most one frame (or one resync step). Return False when more input is needed."""
        buf = self._buf
        t = buf.find(SENTINEL)
        b = buf.find(CHUNK_MAGIC)
        starts = [i for i in (t, b) if i >= 0]
        if not starts:
            keep = self._partial_start_len()
            self.skipped += len(buf) - keep
            self._drop(len(buf) - keep)
            return False
        start = min(starts)
        self.skipped += start
        self._drop(start)
        if start == t:
            return self._step_line(events)
        return self._step_chunk(events)

    def _partial_start_len(self) -> int:
        """Length of a buffer tail that could still grow into a sentinel or magic."""
        buf = self._buf
        for n in range(min(len(buf), len(SENTINEL) - 1), 0, -1):
            tail = bytes(buf[-n:])
            if SENTINEL.startswith(tail) or CHUNK_MAGIC.startswith(tail):
                return n
        return 0

    def _step_line(self, events: list[DeviceEvent]) -> bool:
        buf = self._buf
        limit = min(len(buf), self._max_line)
        for i in range(len(SENTINEL), limit):
            byte = buf[i]
            if byte == 0x0A:
                line = bytes(buf[: i + 1])
                try:
                    events.append(Record(decode_line(line), line))
                except WireError as exc:
                    events.append(BadFrame(str(exc), line=True))
                    self._drop(1)
                    return True
                self._drop(i + 1)
                return True
            if not _is_line_byte(byte):
                events.append(BadFrame("request line interrupted by a non-text byte", line=True))
                self._drop(1)
                return True
        if len(buf) >= self._max_line:
            events.append(BadFrame("request line too long", line=True))
            self._drop(1)
            return True
        return False

    def _step_chunk(self, events: list[DeviceEvent]) -> bool:
        buf = self._buf
        if len(buf) < CHUNK_HEADER_SIZE:
            return False
        _, upload_id, flags, seq, length = CHUNK_HEADER.unpack_from(buf)
        if flags != 0 or upload_id == 0 or not 1 <= length <= self.max_payload:
            events.append(BadFrame("chunk header invalid"))
            self._drop(1)
            return True
        total = CHUNK_OVERHEAD + length
        if len(buf) < total:
            return False
        crc = int.from_bytes(buf[total - 4 : total], "little")
        if crc32(bytes(buf[2 : total - 4])) != crc:
            events.append(BadFrame("chunk CRC mismatch", upload_id, seq))
            self._drop(1)
            return True
        events.append(Chunk(upload_id, seq, bytes(buf[CHUNK_HEADER_SIZE : total - 4]), flags))
        self._drop(total)
        return True


__all__ = [
    "BadFrame",
    "BadRecord",
    "Chunk",
    "DeviceEvent",
    "HostEvent",
    "LogLine",
    "Record",
    "RecordDecoder",
    "RequestDecoder",
]
