"""Rewrite the test outputs embedded in a plain .espdl, in place and byte for byte otherwise.

Why: esp-ppq computes the embedded test outputs with its own float simulation, which can miss the
chip by one step (its float Softmax, its float32 int16 sums). esp-dl's `Model::test()` then fails on
a board that computes correctly. When the chip's arithmetic (the emulator, and independently the
reference's corrected executor) says otherwise, the harness writes the chip's values instead.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from host.errors import HarnessError
from host.espdl import flatbuf as fb
from host.espdl.container import EDL2_HEADER, read_edl2
from host.espdl.fbs import espdl_generated as fbs
from host.espdl.model import DTYPES


def rewrite_test_outputs(data: bytes, values: Mapping[str, np.ndarray]) -> bytes:
    """`data` (an EDL2 .espdl) with the named embedded test outputs replaced by `values`.

    Only the tensors' bytes change: same dtype, same element count, so offsets, sizes and every other
    byte stay as they were.
    """
    edl = read_edl2(data)
    if edl.encrypted:
        raise HarnessError("the .espdl is encrypted: its test values cannot be rewritten; export it unencrypted")
    graph = fb.table(fb.root(fbs.Model, edl.payload).Graph)
    if graph is None:
        raise HarnessError("corrupt .espdl model: it has no graph; re-export the model")
    out = bytearray(data)
    remaining = dict(values)
    for tensor in fb.tables(graph.TestOutputsValue, graph.TestOutputsValueLength):
        name = fb.string(tensor.Name) or ""
        if name not in remaining:
            continue
        new = np.asarray(remaining.pop(name))
        dtype = DTYPES.get(int(fb.scalar(tensor.DataType)))
        dims = fb.numbers(tensor.DimsAsNumpy)
        count = int(np.prod(dims)) if dims is not None else 1
        if dtype is None or new.dtype != dtype or new.size != count:
            raise HarnessError(f"test output {name!r} holds {count} {dtype} values; got {new.size} {new.dtype}")
        start, stored = fb.structs(tensor.RawData, tensor.RawDataLength) or (0, memoryview(b""))
        if len(stored) < count * dtype.itemsize:
            raise HarnessError(f"corrupt .espdl model: test output {name!r} stores fewer bytes than its dims need")
        raw = np.ascontiguousarray(new.reshape(-1), dtype=dtype.newbyteorder("<")).tobytes()
        out[EDL2_HEADER + start: EDL2_HEADER + start + len(raw)] = raw
    if remaining:
        raise HarnessError(f"the .espdl has no embedded test outputs named {', '.join(sorted(remaining))}")
    return bytes(out)
