"""The .espdl model as data: graph I/O, nodes, initializers, metadata and embedded test values.

Read from the FlatBuffers payload with the readers flatc generated from esp-dl's `fbs_loader/espdl.fbs`
(host/espdl/fbs, made by tools/gen_espdl_fbs.py), each accessor called through `flatbuf`, which checks
every offset, vector and string against the buffer, so a damaged file raises CorruptModel naming the field.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from host.errors import HarnessError
from host.espdl import container, layouts
from host.espdl import flatbuf as fb
from host.espdl.fbs import espdl_generated as fbs
from host.espdl.flatbuf import CorruptModel

_DT = fbs.TensorDataType
# TensorDataType -> numpy dtype (None: not representable as an array here)
DTYPES: dict[int, np.dtype | None] = {
    _DT.UNDEFINED: None, _DT.FLOAT: np.dtype(np.float32), _DT.UINT8: np.dtype(np.uint8),
    _DT.INT8: np.dtype(np.int8), _DT.UINT16: np.dtype(np.uint16), _DT.INT16: np.dtype(np.int16),
    _DT.INT32: np.dtype(np.int32), _DT.INT64: np.dtype(np.int64), _DT.STRING: None, _DT.BOOL: np.dtype(np.bool_),
    _DT.FLOAT16: np.dtype(np.float16), _DT.DOUBLE: np.dtype(np.float64), _DT.UINT32: np.dtype(np.uint32),
    _DT.UINT64: np.dtype(np.uint64),
}
_AT = fbs.AttributeType
MAX_ELEMENTS = 1 << 31  # refuses absurd dims before numpy tries to allocate them


#: ops that only convert between precisions (inserted by esp-ppq), not layers of the network
CONVERSION_OPS = frozenset({"RequantizeLinear", "QuantizeLinear", "DequantizeLinear"})


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

    def int16_nodes(self) -> list[str]:
        """Layers that compute in int16 (int16 output): what a mixed-precision recipe widened. The conversions
        esp-ppq inserts between int8 and int16 layers (RequantizeLinear and the like) are not layers."""
        wide = np.dtype(np.int16)
        return [node.name for node in self.nodes if node.op_type not in CONVERSION_OPS
                and node.outputs and (vi := self.info(node.outputs[0])) is not None and vi.dtype == wide]


def _tensor(t: fbs.Tensor) -> Tensor:
    name = fb.string(t.Name) or ""
    code = int(fb.scalar(t.DataType))
    dtype = DTYPES.get(code)
    if dtype is None:
        raise HarnessError(f"tensor {name!r} has data type {code}, which the harness cannot read; "
                           "only numeric tensors are supported")
    dims_arr = fb.numbers(t.DimsAsNumpy)
    dims = tuple(int(d) for d in (dims_arr if dims_arr is not None else ()))
    if any(d < 0 for d in dims):
        raise CorruptModel(f"corrupt .espdl model: tensor {name!r} has negative dims {dims}; re-export it")
    count = 1
    for d in dims:
        count *= d
        if count > MAX_ELEMENTS:
            raise CorruptModel(f"corrupt .espdl model: tensor {name!r} dims {dims} are absurdly large; re-export it")
    exps = fb.numbers(t.ExponentsAsNumpy)
    raw_data = fb.structs(t.RawData, t.RawDataLength)  # esp-ppq's form: AlignedBytes, 16-byte aligned
    if raw_data is not None:
        _, raw = raw_data
        if count * dtype.itemsize > len(raw):
            raise CorruptModel(f"corrupt .espdl model: tensor {name!r} needs {count * dtype.itemsize} bytes "
                               f"for dims {dims} but holds {len(raw)}; re-export it")
        flat = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=count).astype(dtype)
    else:
        typed = {_DT.FLOAT: t.FloatDataAsNumpy, _DT.INT32: t.Int32DataAsNumpy, _DT.INT64: t.Int64DataAsNumpy,
                 _DT.DOUBLE: t.DoubleDataAsNumpy, _DT.UINT64: t.Uint64DataAsNumpy}.get(code)
        vec = fb.numbers(typed) if typed is not None else None
        if vec is None:
            vec = np.zeros(0, dtype=dtype)
        if len(vec) != count:
            raise CorruptModel(f"corrupt .espdl model: tensor {name!r} has {len(vec)} values for dims {dims}")
        flat = vec.astype(dtype)
    stored = flat.reshape(dims) if dims else flat.reshape(())
    return Tensor(name=name, dtype=dtype, dims=dims,
                  exponents=tuple(int(e) for e in (exps if exps is not None else ())),
                  array=stored, stored=stored)


def _value_info(v: fbs.ValueInfo) -> ValueInfo:
    name = fb.string(v.Name) or ""
    dtype, shape = None, None
    type_info = fb.table(v.ValueInfoType)
    if type_info is not None and fb.scalar(type_info.ValueType) == fbs.TypeInfoValue.tensor_type:
        tt = fb.union(type_info.Value, fbs.TensorTypeAndShape)
        if tt is not None:
            dtype = DTYPES.get(int(fb.scalar(tt.ElemType)))
            shp = fb.table(tt.Shape)
            if shp is not None:
                dims = []
                for dim in fb.tables(shp.Dim, shp.DimLength):
                    dv = fb.table(dim.Value)
                    dims.append(int(fb.scalar(dv.DimValue)) if dv is not None else -1)
                shape = tuple(dims)
    exps = fb.numbers(v.ExponentsAsNumpy)
    return ValueInfo(name=name, dtype=dtype, shape=shape,
                     exponents=tuple(int(e) for e in (exps if exps is not None else ())))


def _attribute(a: fbs.Attribute) -> tuple[str, Any]:
    name = fb.string(a.Name) or ""
    kind = int(fb.scalar(a.AttrType))
    if kind == _AT.FLOAT:
        f = fb.struct(a.F)
        return name, float(f.F()) if f is not None else 0.0
    if kind == _AT.INT:
        i = fb.struct(a.I)
        return name, int(i.I()) if i is not None else 0
    if kind == _AT.STRING:
        raw = fb.numbers(a.SAsNumpy)
        return name, raw.tobytes().decode("utf-8", "replace") if raw is not None else ""
    if kind == _AT.TENSOR:
        t = fb.table(a.T)
        return name, _tensor(t) if t is not None else None
    if kind == _AT.FLOATS:
        v = fb.numbers(a.FloatsAsNumpy)
        return name, [float(x) for x in (v if v is not None else ())]
    if kind == _AT.INTS:
        v = fb.numbers(a.IntsAsNumpy)
        return name, [int(x) for x in (v if v is not None else ())]
    if kind == _AT.STRINGS:
        return name, fb.strings(a.Strings, a.StringsLength)
    return name, ("<unsupported attribute type %d>" % kind)


def parse_payload(payload: bytes, sha256: str = "", encrypted: bool = False) -> EspdlModel:
    """Build an EspdlModel from a decrypted FlatBuffers payload."""
    try:
        return _parse(payload, sha256, encrypted)
    except HarnessError:
        raise
    except (ValueError, TypeError, IndexError, OverflowError, RecursionError, MemoryError, struct.error) as exc:
        # a safety net only: flatbuf checks every read, so a damaged file raises CorruptModel before this
        raise CorruptModel(f"corrupt .espdl model ({type(exc).__name__}: {exc}); re-export the model") from exc


def _parse(payload: bytes, sha256: str, encrypted: bool) -> EspdlModel:
    root = fb.root(fbs.Model, payload)
    graph = fb.table(root.Graph)
    if graph is None:
        raise CorruptModel("corrupt .espdl model: it has no graph; re-export the model")
    metadata = {}
    for kv in fb.tables(root.MetadataProps, root.MetadataPropsLength):
        metadata[fb.string(kv.Key) or ""] = fb.string(kv.Value) or ""
    nodes = []
    for n in fb.tables(graph.Node, graph.NodeLength):
        attrs = dict(_attribute(a) for a in fb.tables(n.Attribute, n.AttributeLength))
        nodes.append(Node(name=fb.string(n.Name) or "", op_type=fb.string(n.OpType) or "",
                          inputs=fb.strings(n.Input, n.InputLength), outputs=fb.strings(n.Output, n.OutputLength),
                          attributes=attrs))
    inits = {t.name: t for t in (_tensor(x) for x in fb.tables(graph.Initializer, graph.InitializerLength))}
    model = EspdlModel(
        sha256=sha256, encrypted=encrypted, payload_size=len(payload),
        ir_version=int(fb.scalar(root.IrVersion)),
        producer=" ".join(s for s in (fb.string(root.ProducerName), fb.string(root.ProducerVersion)) if s),
        metadata=metadata,
        inputs=[_value_info(v) for v in fb.tables(graph.Input, graph.InputLength)],
        outputs=[_value_info(v) for v in fb.tables(graph.Output, graph.OutputLength)],
        value_info={vi.name: vi for vi in (_value_info(v) for v in fb.tables(graph.ValueInfo, graph.ValueInfoLength))},
        nodes=nodes, initializers=inits,
        test_inputs={t.name: t for t in (_tensor(x) for x in fb.tables(graph.TestInputsValue,
                                                                         graph.TestInputsValueLength))},
        test_outputs={t.name: t for t in (_tensor(x) for x in fb.tables(graph.TestOutputsValue,
                                                                          graph.TestOutputsValueLength))},
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
