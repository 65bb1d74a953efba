"""The .espdl model as data: graph I/O, nodes, initializers, metadata and embedded test values.

Read from the FlatBuffers payload with the bounds-checked reader in `flatbuf`. Field slots follow
esp-dl's `fbs_loader/espdl.fbs` (slot = declaration order in the table; a union takes two slots).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from host.errors import HarnessError
from host.espdl import container, layouts
from host.espdl.flatbuf import CorruptModel, FbTable, root_table

# TensorDataType enum of espdl.fbs -> numpy dtype (None: not representable as an array here)
DTYPES: dict[int, np.dtype | None] = {
    0: None, 1: np.dtype(np.float32), 2: np.dtype(np.uint8), 3: np.dtype(np.int8), 4: np.dtype(np.uint16),
    5: np.dtype(np.int16), 6: np.dtype(np.int32), 7: np.dtype(np.int64), 8: None, 9: np.dtype(np.bool_),
    10: np.dtype(np.float16), 11: np.dtype(np.float64), 12: np.dtype(np.uint32), 13: np.dtype(np.uint64),
}
# AttributeType enum
_FLOAT, _INT, _STRING, _TENSOR, _GRAPH, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 4, 5, 6, 7, 8
MAX_ELEMENTS = 1 << 31  # refuses absurd dims before numpy tries to allocate them


@dataclass
class Tensor:
    """An initializer or test value. `array` is in natural layout; `stored` is as the file holds it."""

    name: str
    dtype: np.dtype
    dims: tuple[int, ...]
    exponents: tuple[int, ...]
    array: np.ndarray
    stored: np.ndarray
    layout: str = "plain"


@dataclass
class ValueInfo:
    name: str
    dtype: np.dtype | None
    shape: tuple[int, ...] | None
    exponents: tuple[int, ...]

    @property
    def exponent(self) -> int:
        return int(self.exponents[0]) if self.exponents else 0


@dataclass
class Node:
    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attributes: dict[str, Any]


@dataclass
class EspdlModel:
    """One model of a .espdl file, with everything the emulator and `espdl info` need."""

    sha256: str
    encrypted: bool
    payload_size: int
    ir_version: int
    producer: str
    metadata: dict[str, str]
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    value_info: dict[str, ValueInfo]
    nodes: list[Node]
    initializers: dict[str, Tensor]
    test_inputs: dict[str, Tensor] = field(default_factory=dict)
    test_outputs: dict[str, Tensor] = field(default_factory=dict)

    def info(self, name: str) -> ValueInfo | None:
        for vi in (*self.inputs, *self.outputs):
            if vi.name == name:
                return vi
        return self.value_info.get(name)

    def op_histogram(self) -> dict[str, int]:
        hist: dict[str, int] = {}
        for node in self.nodes:
            hist[node.op_type] = hist.get(node.op_type, 0) + 1
        return dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])))

    def parameter_bytes(self) -> int:
        return sum(t.stored.nbytes for t in self.initializers.values())


def _tensor(t: FbTable) -> Tensor:
    name = t.string(6) or ""
    code = int(t.scalar(1, "i", 0))
    dtype = DTYPES.get(code)
    if dtype is None:
        raise HarnessError(f"tensor {name!r} has data type {code}, which the harness cannot read; "
                           "only numeric tensors are supported")
    dims_arr = t.numbers(0, "i8")
    dims = tuple(int(d) for d in (dims_arr if dims_arr is not None else ()))
    if any(d < 0 for d in dims):
        raise CorruptModel(f"corrupt .espdl model: tensor {name!r} has negative dims {dims}; re-export it")
    count = 1
    for d in dims:
        count *= d
        if count > MAX_ELEMENTS:
            raise CorruptModel(f"corrupt .espdl model: tensor {name!r} dims {dims} are absurdly large; re-export it")
    exps = t.numbers(13, "i8")
    raw = t.raw_bytes(8, 16)
    if raw is not None:
        if count * dtype.itemsize > len(raw):
            raise CorruptModel(f"corrupt .espdl model: tensor {name!r} needs {count * dtype.itemsize} bytes "
                               f"for dims {dims} but holds {len(raw)}; re-export it")
        flat = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=count).astype(dtype)
    else:
        slot, fmt = {1: (2, "f4"), 6: (3, "i4"), 7: (5, "i8"), 11: (11, "f8"), 13: (12, "u8")}.get(code, (None, None))
        vec = t.numbers(slot, fmt) if slot is not None else None
        if vec is None:
            vec = np.zeros(0, dtype=dtype)
        if len(vec) != count:
            raise CorruptModel(f"corrupt .espdl model: tensor {name!r} has {len(vec)} values for dims {dims}")
        flat = vec.astype(dtype)
    stored = flat.reshape(dims) if dims else flat.reshape(())
    return Tensor(name=name, dtype=dtype, dims=dims,
                  exponents=tuple(int(e) for e in (exps if exps is not None else ())),
                  array=stored, stored=stored)


def _value_info(v: FbTable) -> ValueInfo:
    name = v.string(0) or ""
    dtype, shape = None, None
    type_info = v.table(1)
    if type_info is not None and int(type_info.scalar(0, "B", 0)) == 1:  # union tag 1: tensor_type
        tt = type_info.table(1)
        if tt is not None:
            dtype = DTYPES.get(int(tt.scalar(0, "i", 0)))
            shp = tt.table(1)
            if shp is not None:
                dims = []
                for dim in shp.tables(0):
                    dv = dim.table(0)
                    dims.append(int(dv.scalar(1, "q", 0)) if dv is not None else -1)
                shape = tuple(dims)
    exps = v.numbers(3, "i8")
    return ValueInfo(name=name, dtype=dtype, shape=shape,
                     exponents=tuple(int(e) for e in (exps if exps is not None else ())))


def _attribute(a: FbTable) -> tuple[str, Any]:
    name = a.string(0) or ""
    kind = int(a.scalar(3, "i", 0))
    if kind == _FLOAT:
        return name, float(a.scalar(4, "f", 0.0))
    if kind == _INT:
        return name, int(a.scalar(5, "q", 0))
    if kind == _STRING:
        raw = a.raw_bytes(6, 1)
        return name, bytes(raw).decode("utf-8", "replace") if raw is not None else ""
    if kind == _TENSOR:
        t = a.table(7)
        return name, _tensor(t) if t is not None else None
    if kind == _FLOATS:
        v = a.numbers(10, "f4")
        return name, [float(x) for x in (v if v is not None else ())]
    if kind == _INTS:
        v = a.numbers(11, "i8")
        return name, [int(x) for x in (v if v is not None else ())]
    if kind == _STRINGS:
        return name, a.strings(12)
    return name, ("<unsupported attribute type %d>" % kind)


def parse_payload(payload: bytes, sha256: str = "", encrypted: bool = False) -> EspdlModel:
    """Build an EspdlModel from a decrypted FlatBuffers payload."""
    try:
        return _parse(payload, sha256, encrypted)
    except HarnessError:
        raise
    except (ValueError, TypeError, IndexError, OverflowError, RecursionError, MemoryError) as exc:
        raise CorruptModel(f"corrupt .espdl model ({type(exc).__name__}: {exc}); re-export the model") from exc


def _parse(payload: bytes, sha256: str, encrypted: bool) -> EspdlModel:
    root = root_table(payload)
    graph = root.table(7)
    if graph is None:
        raise CorruptModel("corrupt .espdl model: it has no graph; re-export the model")
    metadata = {}
    for kv in root.tables(8):
        metadata[kv.string(0) or ""] = kv.string(1) or ""
    nodes = []
    for n in graph.tables(0):
        attrs = dict(_attribute(a) for a in n.tables(5))
        nodes.append(Node(name=n.string(2) or "", op_type=n.string(3) or "",
                          inputs=n.strings(0), outputs=n.strings(1), attributes=attrs))
    inits = {t.name: t for t in (_tensor(x) for x in graph.tables(2))}
    model = EspdlModel(
        sha256=sha256, encrypted=encrypted, payload_size=len(payload),
        ir_version=int(root.scalar(0, "i", 0)),
        producer=" ".join(s for s in (root.string(2), root.string(3)) if s),
        metadata=metadata,
        inputs=[_value_info(v) for v in graph.tables(4)],
        outputs=[_value_info(v) for v in graph.tables(5)],
        value_info={vi.name: vi for vi in (_value_info(v) for v in graph.tables(6))},
        nodes=nodes, initializers=inits,
        test_inputs={t.name: t for t in (_tensor(x) for x in graph.tables(8))},
        test_outputs={t.name: t for t in (_tensor(x) for x in graph.tables(9))},
    )
    _unpack_filters(model)
    return model


def _unpack_filters(model: EspdlModel) -> None:
    """Replace the `array` of every packed filter initializer by its natural layout, in place."""
    for node in model.nodes:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.inputs) < 2:
            continue
        t = model.initializers.get(node.inputs[1])
        if t is None or t.layout != "plain":
            continue
        align = layouts.align_for(str(node.attributes.get("quant_type", "S8")))
        if node.op_type in ("Conv", "Gemm"):
            if len(t.dims) != 4:
                continue  # Conv1d filters keep their stored form; the emulator refuses them by name
            kh, kw, c, n = t.dims
            depthwise = node.op_type == "Conv" and int(node.attributes.get("group", 1)) != 1
            if depthwise:
                c, n = 1, t.dims[2]
            t.array = layouts.unpack(t.stored, kh, kw, c, n, align, depthwise)
            t.layout = f"(N/{align})HWC{align}" + ("" if n % align == 0 else "_UNALIGNED")
        elif len(t.dims) >= 2:
            k, n = t.dims[-2:]
            batches = t.stored.reshape(-1, k * n)
            t.array = np.stack([layouts.unpack(b, 1, 1, k, n, align)[0, 0] for b in batches]).reshape(t.dims)
            t.layout = f"(N/{align})HWC{align}" + ("" if n % align == 0 else "_UNALIGNED")


def load_bytes(data: bytes, key: bytes | None = None, name: str | None = None) -> EspdlModel:
    """Parse an EDL2 blob, or one model of a PDL3 package (by `name`; the only one if there is one)."""
    fmt = container.detect_format(data)
    if fmt == "PDL3":
        pack = container.read_pdl3(data)
        if name is None:
            if len(pack.models) != 1:
                raise HarnessError(f"this PDL3 package holds {pack.names()}; name the model to use")
            name = pack.models[0].name
        data = pack.get(name)
    edl = container.read_edl2(data, key)
    digest = hashlib.sha256(bytes(data[: container.EDL2_HEADER + len(edl.payload)])).hexdigest()
    return parse_payload(edl.payload, sha256=digest, encrypted=edl.encrypted)


def load(path: str | Path, key: bytes | None = None, name: str | None = None) -> EspdlModel:
    """Read a .espdl file (EDL2 or PDL3) from disk."""
    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"model file {p} does not exist; give the path of a .espdl file")
    return load_bytes(p.read_bytes(), key=key, name=name)
