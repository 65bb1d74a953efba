"""Bounds checks under flatc's generated .espdl readers, so a corrupted file fails with a clear error, not a crash.

The generated accessors (host/espdl/fbs, `tensor.Name()`, `graph.Node(j)`) read through
`flatbuffers.table.Table`, which never checks that an offset stays inside the buffer: a damaged file
gives IndexError, struct.error, a silently truncated string or a negative offset that wraps to the end
of the buffer. `CheckedTable` is that Table with every position checked before it is read, and every
vector length bounded by the bytes that remain, so a hostile length can neither allocate gigabytes nor
loop for hours. The helpers below call one generated accessor each, install a `CheckedTable` under every
table they return, and name the accessor (e.g. `Tensor.Name`) in the CorruptModel they raise.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import numpy as np
from flatbuffers import encode
from flatbuffers import number_types as N
from flatbuffers.table import Table

from host.errors import HarnessError

T = TypeVar("T")
_U32 = N.UOffsetTFlags.packer_type
_I32 = N.SOffsetTFlags.packer_type
_U16 = N.VOffsetTFlags.packer_type


class CorruptModel(HarnessError):
    """The FlatBuffers payload of a .espdl is malformed."""

    detail: str = ""


def _fail(what: str) -> CorruptModel:
    exc = CorruptModel(
        f"corrupt .espdl model: {what}; re-export the model with esp-ppq or copy the file again "
        "(it is truncated or damaged)"
    )
    exc.detail = what
    return exc


class CheckedTable(Table):
    """flatbuffers.table.Table whose reads (the ones flatc's Python code calls) refuse positions outside the buffer.

    Built only by `checked()`, after the table's own header (its vtable) was found inside the buffer.
    """

    __slots__ = ("_size", "_vtable", "_vt_len")

    def __init__(self, buf: bytes, pos: int):
        size = len(buf)
        if pos < 0 or pos + 4 > size:
            raise _fail(f"table offset {pos} outside the {size}-byte buffer")
        vtable = pos - _I32.unpack_from(buf, pos)[0]
        if vtable < 0 or vtable + 4 > size:
            raise _fail(f"vtable offset {vtable} outside the buffer")
        vt_len, obj_len = _U16.unpack_from(buf, vtable)[0], _U16.unpack_from(buf, vtable + 2)[0]
        if vt_len < 4 or vt_len % 2 or vtable + vt_len > size or pos + obj_len > size:
            raise _fail(f"vtable at {vtable} has impossible sizes ({vt_len}, {obj_len})")
        super().__init__(buf, pos)
        self._size, self._vtable, self._vt_len = size, vtable, vt_len

    def Offset(self, vtableOffset: int) -> int:  # noqa: N802 (flatbuffers' names)
        """The field's offset from the table start, or 0 when the field is absent."""
        if vtableOffset >= self._vt_len:
            return 0
        rel = _U16.unpack_from(self.Bytes, self._vtable + vtableOffset)[0]
        if rel and self.Pos + rel + 4 > self._size:
            raise _fail(f"field at {self.Pos + rel} outside the {self._size}-byte buffer")
        return rel

    def Get(self, flags: Any, off: int) -> Any:  # noqa: N802
        if off < 0 or off + flags.bytewidth > self._size:
            raise _fail(f"{flags.bytewidth}-byte value at {off} runs past the end of the {self._size}-byte buffer")
        return flags.py_type(encode.Get(flags.packer_type, self.Bytes, off))

    def Indirect(self, off: int) -> int:  # noqa: N802
        """The position an offset stored at `off` points to, checked to lie inside the buffer."""
        if off < 0 or off + 4 > self._size:
            raise _fail(f"reference at {off} outside the {self._size}-byte buffer")
        target = off + _U32.unpack_from(self.Bytes, off)[0]
        if target + 4 > self._size:
            raise _fail(f"reference at {off} points outside the buffer")
        return target

    def _vector_at(self, vec: int, elem_size: int) -> tuple[int, int]:
        """(start, length) of the vector whose length word is at `vec` (a checked Indirect target)."""
        n = _U32.unpack_from(self.Bytes, vec)[0]
        start = vec + N.UOffsetTFlags.bytewidth
        if start + n * elem_size > self._size:
            raise _fail(f"vector of {n} elements at {vec} runs past the end of the buffer")
        return start, n

    def String(self, off: int) -> bytes:  # noqa: N802
        start, n = self._vector_at(self.Indirect(off), 1)
        return bytes(self.Bytes[start : start + n])

    def VectorLen(self, off: int) -> int:  # noqa: N802
        # The element size is unknown here: 1 bounds the length by the remaining bytes; tables() and
        # strings() then check the last element's offset, numbers() and structs() the exact size.
        return self._vector_at(self.Indirect(self.Pos + off), 1)[1]

    def Vector(self, off: int) -> int:  # noqa: N802
        return self._vector_at(self.Indirect(self.Pos + off), 1)[0]

    def GetVectorAsNumpy(self, flags: Any, off: int) -> np.ndarray:  # noqa: N802
        start, n = self._vector_at(self.Indirect(self.Pos + off), flags.bytewidth)
        return np.frombuffer(self.Bytes, dtype=N.to_numpy_type(flags), count=n, offset=start)

    def Union(self, t2: Table, off: int) -> None:  # noqa: N802
        t2.Bytes, t2.Pos = self.Bytes, self.Indirect(self.Pos + off)


def checked(obj: T) -> T:
    """`obj` (a generated table object) reading through a CheckedTable: its header is checked now, its fields when read."""
    tab = obj._tab  # type: ignore[attr-defined]  # the one slot of every flatc-generated class
    obj._tab = CheckedTable(tab.Bytes, tab.Pos)  # type: ignore[attr-defined]
    return obj


def _name(accessor: Callable[..., Any]) -> str:
    return getattr(accessor, "__qualname__", repr(accessor))  # e.g. "Tensor.Name"


def _call(accessor: Callable[..., T], *args: int, label: str = "") -> T:
    """accessor(*args), with the accessor named in a CorruptModel from the reads it makes."""
    try:
        return accessor(*args)
    except CorruptModel as exc:
        raise _fail(f"{label or _name(accessor)}: {exc.detail or exc}") from None


def root(cls: Any, buf: bytes) -> Any:
    """The root table of a FlatBuffers buffer (`cls.GetRootAs`), checked."""
    if len(buf) < 8:
        raise _fail(f"payload of {len(buf)} bytes is too short for a FlatBuffers model")
    return _call(lambda: checked(cls.GetRootAs(buf, 0)), label=f"{cls.__name__} root")


def table(accessor: Callable[[], T | None]) -> T | None:
    """A table field (e.g. `model.Graph`), checked; None when absent."""
    return _call(lambda: _checked_or_none(accessor()), label=_name(accessor))


def _checked_or_none(obj: T | None) -> T | None:
    return None if obj is None else checked(obj)


def union(accessor: Callable[[], Table | None], cls: Callable[[], T]) -> T | None:
    """A union field (e.g. `type_info.Value`) read as the generated table class `cls`; None when absent."""

    def read() -> T | None:
        raw = accessor()
        if raw is None:
            return None
        obj = cls()
        obj.Init(raw.Bytes, raw.Pos)  # type: ignore[attr-defined]
        return checked(obj)

    return _call(read, label=_name(accessor))


def struct(accessor: Callable[[], T | None]) -> T | None:
    """A struct field (e.g. `attribute.I`); None when absent. A struct is fixed-size and has no offsets:
    once all its bytes lie inside the buffer, the generated reads inside it cannot leave it."""
    obj = _call(accessor)
    if obj is None:
        return None
    tab, size = obj._tab, obj.SizeOf()  # type: ignore[attr-defined]
    if tab.Pos + size > len(tab.Bytes):
        raise _fail(f"{_name(accessor)}: {size}-byte struct at {tab.Pos} runs past the end of the buffer")
    return obj


def scalar(accessor: Callable[[], T]) -> T:
    """A scalar field (e.g. `tensor.DataType`), or the schema's default when absent."""
    return _call(accessor)


def string(accessor: Callable[[], bytes | None]) -> str | None:
    """A string field (e.g. `node.Name`), decoded as UTF-8; None when absent."""
    raw = _call(accessor)
    return None if raw is None else _utf8(raw, _name(accessor))


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"{what} is not UTF-8") from exc


def _length(length: Callable[[], int], item: Callable[[int], Any]) -> int:
    """A vector's length, checked by reading the last element's offset: start + 4 * n must lie inside the buffer."""
    n = _call(length)
    if n:
        _call(item, n - 1, label=f"{_name(item)}[{n - 1}]")
    return n


def tables(item: Callable[[int], T], length: Callable[[], int]) -> list[T]:
    """Every table of a vector field (e.g. `graph.Node`, `graph.NodeLength`), each checked."""
    return [_call(lambda: checked(item(j)), label=f"{_name(item)}[{j}]") for j in range(_length(length, item))]


def strings(item: Callable[[int], bytes], length: Callable[[], int]) -> list[str]:
    """Every string of a vector field (e.g. `node.Input`, `node.InputLength`), decoded as UTF-8."""
    out = []
    for j in range(_length(length, item)):
        label = f"{_name(item)}[{j}]"
        out.append(_utf8(_call(item, j, label=label), label))
    return out


def numbers(accessor: Callable[[], np.ndarray | int]) -> np.ndarray | None:
    """A vector of numbers (e.g. `tensor.DimsAsNumpy`) as a native-order copy; None when absent.

    A copy because the generated accessor returns a little-endian view into the (read-only) payload."""
    arr = _call(accessor)
    if isinstance(arr, int):  # flatc's AsNumpy accessors return 0 for an absent vector
        return None
    return arr.astype(arr.dtype.newbyteorder("="))


def structs(item: Callable[[int], Any], length: Callable[[], int]) -> tuple[int, memoryview] | None:
    """(start in the buffer, bytes) of a vector of structs (e.g. `tensor.RawData`), bounds-checked; None when absent.

    The bytes are a view, not a copy: test values are rewritten in place at `start`."""
    first = _call(item, 0, label=_name(item))
    if first is None:
        return None
    n = _call(length)
    tab, size = first._tab, first.SizeOf()
    if tab.Pos + n * size > len(tab.Bytes):
        raise _fail(f"{_name(item)}: vector of {n} {size}-byte structs at {tab.Pos} runs past the end of the buffer")
    return tab.Pos, memoryview(tab.Bytes)[tab.Pos : tab.Pos + n * size]
