"""Bounds-checked access to FlatBuffers tables, so a corrupted .espdl fails with a clear error, not a crash.

The `flatbuffers` package reads fields without checking that offsets stay inside the buffer (a bad file
gives IndexError, struct.error or a negative, wrapped slice). Every position is checked here before
`flatbuffers.table.Table` reads it, and every vector length is bounded by the bytes that remain, so a
hostile length can neither allocate gigabytes nor loop for hours.
"""

from __future__ import annotations

import struct

import numpy as np
from flatbuffers import number_types as N
from flatbuffers.table import Table

from host.errors import HarnessError


class CorruptModel(HarnessError):
    """The FlatBuffers payload of a .espdl is malformed."""


def _fail(what: str) -> CorruptModel:
    return CorruptModel(
        f"corrupt .espdl model: {what}; re-export the model with esp-ppq or copy the file again "
        "(it is truncated or damaged)"
    )


class FbTable:
    """One FlatBuffers table; fields are addressed by their slot number in the schema (0-based)."""

    __slots__ = ("_buf", "_t", "_vt_len", "_size")

    def __init__(self, buf: bytes, pos: int):
        size = len(buf)
        if pos < 0 or pos + 4 > size:
            raise _fail(f"table offset {pos} outside the {size}-byte buffer")
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        if vtable < 0 or vtable + 4 > size:
            raise _fail(f"vtable offset {vtable} outside the buffer")
        vt_len, obj_len = struct.unpack_from("<HH", buf, vtable)
        if vt_len < 4 or vt_len % 2 or vtable + vt_len > size or pos + obj_len > size:
            raise _fail(f"vtable at {vtable} has impossible sizes ({vt_len}, {obj_len})")
        self._buf, self._size, self._vt_len = buf, size, vt_len
        self._t = Table(buf, pos)

    def _field(self, slot: int) -> int:
        """Absolute position of a field, or 0 when absent."""
        voff = 4 + 2 * slot
        if voff >= self._vt_len:
            return 0
        rel = self._t.Offset(voff)
        if rel == 0:
            return 0
        pos = self._t.Pos + rel
        if pos + 4 > self._size:
            raise _fail(f"field {slot} at {pos} outside the buffer")
        return pos

    def _target(self, pos: int) -> int:
        target = self._t.Indirect(pos)
        if target < 0 or target + 4 > self._size:
            raise _fail(f"reference at {pos} points outside the buffer")
        return target

    def scalar(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self._field(slot)
        if not pos:
            return default
        if pos + struct.calcsize(fmt) > self._size:
            raise _fail(f"scalar field {slot} runs past the end")
        return struct.unpack_from("<" + fmt, self._buf, pos)[0]

    def table(self, slot: int) -> FbTable | None:
        pos = self._field(slot)
        return FbTable(self._buf, self._target(pos)) if pos else None

    def string(self, slot: int) -> str | None:
        pos = self._field(slot)
        if not pos:
            return None
        start, n = self._vector_at(self._target(pos), 1)
        try:
            return bytes(self._buf[start : start + n]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(f"string field {slot} is not UTF-8") from exc

    def _vector_at(self, vec: int, elem_size: int) -> tuple[int, int]:
        n = struct.unpack_from("<I", self._buf, vec)[0]
        start = vec + N.UOffsetTFlags.bytewidth
        if start + n * elem_size > self._size:
            raise _fail(f"vector of {n} elements at {vec} runs past the end of the buffer")
        return start, n

    def vector(self, slot: int, elem_size: int) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) when absent."""
        pos = self._field(slot)
        if not pos:
            return 0, 0
        return self._vector_at(self._target(pos), elem_size)

    def numbers(self, slot: int, dtype: str) -> np.ndarray | None:
        dt = np.dtype(dtype).newbyteorder("<")
        pos = self._field(slot)
        if not pos:
            return None
        start, n = self._vector_at(self._target(pos), dt.itemsize)
        return np.frombuffer(self._buf, dtype=dt, count=n, offset=start).astype(dt.newbyteorder("="))

    def raw_bytes(self, slot: int, elem_size: int) -> memoryview | None:
        """The bytes of a vector of fixed-size structs (AlignedBytes), without copying."""
        pos = self._field(slot)
        if not pos:
            return None
        start, n = self._vector_at(self._target(pos), elem_size)
        return memoryview(self._buf)[start : start + n * elem_size]

    def tables(self, slot: int) -> list[FbTable]:
        start, n = self.vector(slot, 4)
        return [FbTable(self._buf, self._target(start + 4 * i)) for i in range(n)]

    def strings(self, slot: int) -> list[str]:
        start, n = self.vector(slot, 4)
        out = []
        for i in range(n):
            s, ln = self._vector_at(self._target(start + 4 * i), 1)
            try:
                out.append(bytes(self._buf[s : s + ln]).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise _fail("string vector element is not UTF-8") from exc
        return out


def root_table(buf: bytes) -> FbTable:
    """The root table of a FlatBuffers buffer (after the 4-byte root offset)."""
    if len(buf) < 8:
        raise _fail(f"payload of {len(buf)} bytes is too short for a FlatBuffers model")
    return FbTable(buf, struct.unpack_from("<I", buf, 0)[0])
