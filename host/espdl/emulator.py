"""Runs a .espdl graph with ESP-DL's integer arithmetic on the host: an engine independent of ESP-PPQ.

Tensors are numpy arrays in the layout esp-dl holds them (NHWC for feature maps), integer (int8/int16)
except where esp-dl itself computes float (Softmax output). Every tensor has one exponent, read from the
model's value infos: real value = q * 2^exponent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.errors import HarnessError
from host.chip.releases import FIRMWARE_ESPDL_VERSION, espdl_features
from host.espdl import ops
from host.espdl.ops import FloatWeights
from host.espdl.model import EspdlModel, Node, Tensor
from host.chip.targets import half_even

_QUANT_DTYPES = {"S8": np.dtype(np.int8), "S16": np.dtype(np.int16), "W8A16": np.dtype(np.int16),
                 "F32": np.dtype(np.float32)}


class TensorDict(dict):
    """name -> array, plus `exponents` (name -> int) for every tensor in it."""

    def __init__(self, *args, exponents: dict[str, int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.exponents: dict[str, int] = dict(exponents or {})


@dataclass(frozen=True)
class Divergence:
    """The first tensor, in execution order, where two runs disagree."""

    name: str
    index: int  # position in the order compared
    reason: str
    max_abs_diff: float | None = None
    mismatches: int | None = None


class Emulator:
    """Executes one EspdlModel for a target chip as a given esp-dl release would."""

    def __init__(self, model: EspdlModel, target: str = "esp32p4",
                 espdl_version: str = FIRMWARE_ESPDL_VERSION, threads: int | None = 1):
        """`threads` caps the BLAS threads while running (None: BLAS's default). One thread is the
        default because this graph's many small matrix products lose more to thread hand-off than
        they gain, and badly so on a machine whose cores are busy (10x measured with 2 threads)."""
        self.model = model
        self.threads = threads
        self.target = target
        self.even = half_even(target)
        self.features = espdl_features(espdl_version)
        self._consts = model.initializers
        self._fw: dict[str, FloatWeights] = {}
        self._lut: dict[str, np.ndarray] = {}
        self.notes: dict[str, str] = {}  # node name -> what in this model deserves a look (see ops)
        self.order = self._schedule()
        for node in self.order:
            if node.op_type not in ops.OPS:
                raise ops.UnsupportedOp(
                    f"node {node.name!r}: operator {node.op_type} is not emulated; supported: {sorted(ops.OPS)}"
                )

    # ---- tensor facts -------------------------------------------------------------------------------
    def is_constant(self, name: str) -> bool:
        return name in self._consts

    def constant(self, name: str) -> Tensor:
        try:
            return self._consts[name]
        except KeyError:
            raise HarnessError(f"the model has no initializer {name!r}, which a node needs: corrupt model") from None

    def exponents_of(self, name: str) -> tuple[int, ...]:
        if name in self._consts:
            return self._consts[name].exponents or (0,)
        info = self.model.info(name)
        if info is None or not info.exponents:
            raise HarnessError(f"tensor {name!r} has no exponent in the model's value infos: corrupt or "
                               "unquantized model; export it with esp-ppq")
        return info.exponents

    def exponent(self, name: str) -> int:
        return int(self.exponents_of(name)[0])

    def out_dtype(self, node: Node, index: int = 0) -> np.dtype:
        info = self.model.info(node.outputs[index])
        if info is not None and info.dtype is not None:
            return info.dtype
        qt = str(node.attributes.get("quant_type", "S8"))
        if qt not in _QUANT_DTYPES:
            raise ops.UnsupportedOp(f"node {node.name!r}: quant_type {qt!r} is not emulated")
        return _QUANT_DTYPES[qt]

    def note(self, node: Node, text: str) -> None:
        self.notes.setdefault(node.name, text)

    def float_weights(self, name: str, depthwise: bool) -> FloatWeights:
        """A filter as a float matrix (K, N) or depthwise (KH, KW, N), cached per dtype."""
        if name not in self._fw:
            self._fw[name] = FloatWeights(self.constant(name).array, depthwise)
        return self._fw[name]

    def lut_u8(self, name: str, table: np.ndarray) -> np.ndarray:
        """An int8 LUT re-indexed by the input's bit pattern as uint8 (x + 128 == uint8(x) ^ 0x80)."""
        if name not in self._lut:
            self._lut[name] = table[np.arange(256) ^ 0x80]
        return self._lut[name]

    # ---- execution -------------------------------------------------------------------------------------
    def _schedule(self) -> list[Node]:
        """Nodes in the file's order when it is topological (esp-dl runs them so), checked."""
        known = set(self._consts) | {vi.name for vi in self.model.inputs} | {""}
        for node in self.model.nodes:
            missing = [n for n in node.inputs if n not in known]
            if missing:
                raise HarnessError(f"node {node.name!r} reads {missing} before anything produces them: "
                                   "the graph is not in execution order or is corrupt")
            known.update(node.outputs)
        return list(self.model.nodes)

    def _needed(self, targets: set[str]) -> list[Node]:
        needed, want = [], set(targets)
        for node in reversed(self.order):
            if want.intersection(node.outputs):
                needed.append(node)
                want.update(n for n in node.inputs if n)
        return needed[::-1]

    def run(self, inputs: dict[str, np.ndarray], outputs: list[str] | None = None,
            keep_all: bool = False) -> TensorDict:
        """Run the graph; return the graph outputs, or the named tensors (any stage), or with keep_all every one."""
        if self.threads is None:
            return self._run(inputs, outputs, keep_all)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.threads, user_api="blas"):
            return self._run(inputs, outputs, keep_all)

    def _run(self, inputs: dict[str, np.ndarray], outputs: list[str] | None, keep_all: bool) -> TensorDict:
        env: dict[str, np.ndarray] = {}
        for vi in self.model.inputs:
            if vi.name not in inputs:
                raise HarnessError(f"missing input {vi.name!r}; the model's inputs are "
                                   f"{[v.name for v in self.model.inputs]}")
            x = np.asarray(inputs[vi.name])
            if vi.shape and tuple(x.shape) != tuple(vi.shape):
                raise HarnessError(f"input {vi.name!r} has shape {x.shape}, the model wants {vi.shape} (NHWC)")
            if vi.dtype is not None and x.dtype != vi.dtype:
                raise HarnessError(f"input {vi.name!r} is {x.dtype}, the model wants {vi.dtype}: quantize it first")
            env[vi.name] = x
        targets = list(outputs) if outputs is not None else [vi.name for vi in self.model.outputs]
        produced = {n for node in self.order for n in node.outputs} | set(env)
        unknown = [t for t in targets if t not in produced]
        if unknown:
            raise HarnessError(f"no tensor named {unknown} in this model; see `python -m host espdl info`")
        schedule = self.order if keep_all else self._needed(set(targets))
        last_use = {}
        for i, node in enumerate(schedule):
            for n in node.inputs:
                last_use[n] = i
        keep = set(targets)
        for i, node in enumerate(schedule):
            xs = [env[n] if n in env else (self._consts[n].array if n in self._consts else None)
                  for n in node.inputs]
            try:
                ys = ops.OPS[node.op_type](self, node, xs)
            except HarnessError:
                raise
            except (ValueError, IndexError, TypeError, KeyError) as exc:
                raise HarnessError(f"node {node.name!r} ({node.op_type}) failed in the emulator: {exc}") from exc
            for name, y in zip(node.outputs, ys):
                env[name] = y
            if not keep_all:
                for n in node.inputs:
                    if last_use.get(n) == i and n not in keep and n in env and n not in self._consts:
                        del env[n]
        names = list(env) if keep_all else targets
        return TensorDict({n: env[n] for n in names},
                          exponents={n: self.exponent(n) for n in names if env[n].dtype.kind != "f"})

    def tensor_order(self) -> list[str]:
        """Every tensor name in execution order: graph inputs, then each node's outputs."""
        names = [vi.name for vi in self.model.inputs]
        for node in self.order:
            names.extend(node.outputs)
        return names


def first_divergence(a: dict[str, np.ndarray], b: dict[str, np.ndarray], order: list[str] | None = None,
                     atol: float = 0.0) -> Divergence | None:
    """The first tensor (in `order`, else a's order) present in both dicts whose values differ, or None.

    Integers compare exactly; float tensors within `atol`.
    """
    names = [n for n in (order if order is not None else list(a)) if n in a and n in b]
    for i, name in enumerate(names):
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape:
            if x.size == y.size:
                return Divergence(name, i, f"shape {x.shape} vs {y.shape}")
            return Divergence(name, i, f"shape {x.shape} vs {y.shape} ({x.size} vs {y.size} elements)")
        diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
        bad = diff > atol
        if bad.any():
            return Divergence(name, i, "values differ", float(diff.max()), int(bad.sum()))
    return None


def in_espdl_layout(other: np.ndarray, like: np.ndarray) -> np.ndarray:
    """`other` (a tensor from another engine, e.g. ESP-PPQ's NCHW) in the layout of the emulator's `like`.

    ESP-DL holds feature maps NHWC, but the exporter keeps some 4-D tensors as they were (the attention
    block's reshaped maps), so the shapes decide; when they cannot (C == H == W, e.g. 80 channels on an
    80x80 map), the layout under which the values agree is taken - a wrong permutation of real data
    cannot agree.
    """
    a = np.asarray(other)
    candidates = [a] if a.shape == like.shape else []
    if a.ndim == 4 and a.transpose(0, 2, 3, 1).shape == like.shape:
        candidates.append(a.transpose(0, 2, 3, 1))
    if not candidates:
        return a
    return next((c for c in candidates if np.array_equal(c, like)), candidates[0])
