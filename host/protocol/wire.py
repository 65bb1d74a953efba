"""Byte-level wire format of the harness protocol: record lines and binary upload chunk frames.

Pure functions, no I/O. docs/protocol.md is the specification; the C++ component
firmware/components/hil_protocol implements the same rules, and fixtures/protocol holds golden
frames that both implementations are tested against. Every number or rule here has a twin in
hil_protocol/wire.hpp: change both or neither.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 2  # 2: queued detects (pipelined uploads), "queue" in info, error "busy"

# A record line: SENTINEL + canonical JSON object + b" " + 8 lowercase hex digits of crc32(JSON) + b"\n".
SENTINEL = b"@HIL "
MAX_REQUEST_LINE = 1024  # bytes of one host->device line including sentinel and newline
MAX_RECORD_LINE = 16384  # bytes of one device->host line including sentinel and newline

# A binary upload chunk frame (host -> device only):
#   magic A5 C3 | upload id u8 | flags u8 (0) | seq u32 LE | len u16 LE | payload | crc32 u32 LE
# The CRC covers bytes from the upload id to the end of the payload (not the magic).
CHUNK_MAGIC = b"\xa5\xc3"
CHUNK_HEADER = struct.Struct("<2sBBIH")
CHUNK_HEADER_SIZE = CHUNK_HEADER.size  # 10
CHUNK_TRAILER_SIZE = 4
CHUNK_OVERHEAD = CHUNK_HEADER_SIZE + CHUNK_TRAILER_SIZE  # 14
MAX_CHUNK_PAYLOAD = 32768


class WireError(ValueError):
    """A frame or record that violates the wire format (bad CRC, bad JSON, oversize, ...)."""


def crc32(data: bytes, start: int = 0) -> int:
    """CRC-32/ISO-HDLC (zlib), the same as ESP-IDF's esp_rom_crc32_le(start, data, len)."""
    return zlib.crc32(data, start) & 0xFFFFFFFF


def float32(value: float) -> float:
    """Round a Python float to the nearest float32, the type every non-integer wire number has."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _format_number(value: float) -> str:
    """Non-integer numbers are float32 printed as C's "%.9g" (round-trips float32 exactly)."""
    if not math.isfinite(value):
        return "null"
    value = float32(value)
    if not math.isfinite(value):  # a double that overflows float32
        return "null"
    return "%.9g" % value


def _escape_string(text: str) -> str:
    # json.dumps with ensure_ascii=True: short forms for \" \\ \n \r \t \b \f, lowercase \u00XX for
    # other characters outside space..~ (DEL included), \uXXXX surrogate pairs above U+FFFF - the
    # escapes hil_protocol/json.cpp writes.
    return json.dumps(text, ensure_ascii=True)


def canonical_json(value: Any) -> str:
    """The one JSON spelling both codecs produce: compact, ASCII, insertion-ordered keys, float32 numbers.

    Canonical so that golden frames can be compared byte for byte across Python and C++.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise WireError(f"integer {value} does not fit int64")
        return str(value)
    if isinstance(value, float):
        return _format_number(value)
    if isinstance(value, str):
        return _escape_string(value)
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise WireError(f"object key {key!r} is not a string")
            parts.append(_escape_string(key) + ":" + canonical_json(item))
        return "{" + ",".join(parts) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    raise WireError(f"cannot encode {type(value).__name__} on the wire")


def encode_line(obj: dict[str, Any], max_line: int = MAX_RECORD_LINE) -> bytes:
    """Encode one record or request line. `obj` must be a dict with a string "t" (its type)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
        raise WireError('a record must be a JSON object with a string "t" field')
    body = canonical_json(obj).encode("ascii")
    line = SENTINEL + body + b" %08x\n" % crc32(body)
    if len(line) > max_line:
        raise WireError(f"record of {len(line)} bytes exceeds the {max_line}-byte line limit")
    return line


def _reject_constant(name: str) -> Any:
    raise WireError(f"non-finite number {name} is not allowed on the wire")


def decode_line(line: bytes) -> dict[str, Any]:
    """Decode one line that starts with SENTINEL (trailing CR/LF optional). Raises WireError."""
    if not line.startswith(SENTINEL):
        raise WireError("line does not start with the record sentinel")
    line = line.rstrip(b"\n").rstrip(b"\r")
    rest = line[len(SENTINEL):]
    if len(rest) < 10 or rest[-9:-8] != b" ":
        raise WireError("record has no ' <crc32>' trailer")
    body, crc_text = rest[:-9], rest[-8:]
    if not all(c in b"0123456789abcdef" for c in crc_text):
        raise WireError("record CRC is not 8 lowercase hex digits")
    if crc32(body) != int(crc_text, 16):
        raise WireError("record CRC mismatch")
    try:
        text = body.decode("ascii")
        obj = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"record body is not ASCII JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
        raise WireError('record body is not an object with a string "t" field')
    return obj


@dataclass(frozen=True)
class Chunk:
    """One binary upload chunk: `seq`-th slice of upload `upload_id`."""

    upload_id: int
    seq: int
    payload: bytes
    flags: int = 0


def encode_chunk(chunk: Chunk) -> bytes:
    """Encode a chunk frame (host -> device)."""
    if not 1 <= chunk.upload_id <= 255:
        raise WireError("upload id must be 1..255")
    if not 1 <= len(chunk.payload) <= MAX_CHUNK_PAYLOAD:
        raise WireError(f"chunk payload must be 1..{MAX_CHUNK_PAYLOAD} bytes")
    if not 0 <= chunk.seq < 2**32 or chunk.flags != 0:
        raise WireError("chunk seq must fit u32 and flags must be 0")
    head = CHUNK_HEADER.pack(CHUNK_MAGIC, chunk.upload_id, chunk.flags, chunk.seq, len(chunk.payload))
    covered = head[2:] + chunk.payload
    return head + chunk.payload + struct.pack("<I", crc32(covered))


def decode_chunk(frame: bytes, max_payload: int = MAX_CHUNK_PAYLOAD) -> Chunk:
    """Decode exactly one chunk frame. Raises WireError."""
    if len(frame) < CHUNK_OVERHEAD + 1:
        raise WireError("chunk frame too short")
    magic, upload_id, flags, seq, length = CHUNK_HEADER.unpack_from(frame)
    if magic != CHUNK_MAGIC:
        raise WireError("chunk frame has no magic")
    if flags != 0 or upload_id == 0 or not 1 <= length <= max_payload:
        raise WireError("chunk header invalid")
    if len(frame) != CHUNK_OVERHEAD + length:
        raise WireError("chunk frame length does not match its header")
    (crc,) = struct.unpack_from("<I", frame, CHUNK_HEADER_SIZE + length)
    if crc32(frame[2 : CHUNK_HEADER_SIZE + length]) != crc:
        raise WireError("chunk CRC mismatch")
    return Chunk(upload_id, seq, bytes(frame[CHUNK_HEADER_SIZE : CHUNK_HEADER_SIZE + length]), flags)
