"""Integer semantics of each ESP-DL operator, as the chip computes it, on NHWC numpy arrays.

Each function takes the emulator context, the node and its input arrays and returns the output arrays.
Facts come from esp-dl 3.3.9's modules and kernels (dl/module/include, dl/base) and esp-ppq 1.3.12's
exporter; see reference/esp-dl-ops.md. Anything outside what is verified raises UnsupportedOp naming the
node, so the emulator never approximates silently.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
from numpy.lib.stride_tricks import as_strided

from host.chip.libm import expf as chip_expf
from host.chip.releases import EspdlFeatures
from host.chip.rounding import RANGES, round_float, saturate, shift_round
from host.errors import HarnessError
from host.espdl import layouts
from host.espdl.model import Node, Tensor


class FloatWeights:
    """A filter prepared for exact float matrix products, with the bound that proves them exact."""

    def __init__(self, natural: np.ndarray, depthwise: bool):
        if depthwise:
            kh, kw, n, _ = natural.shape
            self._int = natural.reshape(kh, kw, n).astype(np.int64)
            self.colsum_max = float(np.abs(self._int).sum(axis=(0, 1)).max(initial=0))
        else:
            self._int = natural.reshape(-1, natural.shape[-1]).astype(np.int64)
            self.colsum_max = float(np.abs(self._int).sum(axis=0).max(initial=0))
        self._cache: dict[type, np.ndarray] = {}

    def get(self, dtype: type) -> np.ndarray:
        if dtype not in self._cache:
            self._cache[dtype] = self._int.astype(dtype)
        return self._cache[dtype]

    @staticmethod
    def bias_max(bias: np.ndarray | None) -> float:
        return float(np.abs(bias.astype(np.int64)).max(initial=0)) if bias is not None else 0.0


class OpContext(Protocol):
    """What an operator may ask of the engine running it (host.espdl.emulator.Emulator implements it)."""

    target: str
    even: bool  # the chip rounds half to even (else half up)
    features: EspdlFeatures  # the esp-dl release being emulated
    notes: dict[str, str]  # node name -> what the emulator cannot prove about it

    def note(self, node: Node, text: str) -> None: ...
    def is_constant(self, name: str) -> bool: ...
    def constant(self, name: str) -> Tensor: ...
    def exponents_of(self, name: str) -> tuple[int, ...]: ...
    def exponent(self, name: str) -> int: ...
    def out_dtype(self, node: Node, index: int = 0) -> np.dtype: ...
    def float_weights(self, name: str, depthwise: bool) -> FloatWeights: ...
    def lut_u8(self, name: str, table: np.ndarray) -> np.ndarray: ...


OpFunc = Callable[[OpContext, Node, list], list]
OPS: dict[str, OpFunc] = {}
F32_EXACT = float(1 << 24)  # below this every partial sum of integers is exact in float32


class UnsupportedOp(HarnessError):
    """An operator or attribute the emulator does not reproduce bit-exactly."""


def _unsupported(node: Node, what: str) -> UnsupportedOp:
    return UnsupportedOp(
        f"node {node.name!r} ({node.op_type}): {what} is not emulated; the emulator only runs what it "
        "reproduces bit-exactly - extend host/espdl/ops.py after checking esp-dl's kernel for it"
    )


def op(*names: str) -> Callable[[OpFunc], OpFunc]:
    def register(fn: OpFunc) -> OpFunc:
        for name in names:
            OPS[name] = fn
        return fn

    return register


def _float_dtype(bound: float, node: Node) -> type:
    """float32 when every partial sum is provably below 2^24 (then float32 integer arithmetic is exact),
    else float64 (exact below 2^53: int8 and int16 layers of any realistic size stay far below)."""
    if bound < F32_EXACT:
        return np.float32
    if bound >= float(1 << 53):
        raise HarnessError(f"node {node.name!r}: a sum could exceed 2^53 and cannot be computed exactly")
    return np.float64


def _requant(em: OpContext, node: Node, acc: np.ndarray, shift, out_index: int = 0) -> np.ndarray:
    """sat(rr(acc, shift)) then the fused activation, on an exact integer-valued float array.

    acc * 2^-shift is exact in binary floating point (a power-of-two scale), so rounding it with rint
    (half to even) or floor(v + 0.5) (half up) is exactly esp-dl's shift-and-round. Where half up could
    be inexact (|v| >= 2^23 in float32) the value saturates anyway.
    """
    dtype = em.out_dtype(node, out_index)
    scale = np.exp2(-np.asarray(shift, dtype=np.float64)).astype(acc.dtype)
    v = acc * scale
    if em.even:
        np.rint(v, out=v)
    else:
        v += acc.dtype.type(0.5)
        np.floor(v, out=v)
    lo, hi = RANGES[dtype]
    act = node.attributes.get("activation", "Linear")
    if act == "Relu":
        lo = 0
    elif act != "Linear":
        raise _unsupported(node, f"fused activation {act!r}")
    np.clip(v, lo, hi, out=v)
    return v.astype(dtype)


def _weight_exponents(em: OpContext, node: Node, name: str, n: int) -> np.ndarray:
    exps = np.asarray(em.exponents_of(name), dtype=np.int64)
    if exps.size not in (1, n):
        raise HarnessError(f"node {node.name!r}: {exps.size} weight exponents for {n} output channels; corrupt model")
    return np.broadcast_to(exps, (n,))


def _bias(em: OpContext, node: Node, n_out: int) -> np.ndarray | None:
    if len(node.inputs) > 2 and node.inputs[2]:
        b = em.constant(node.inputs[2]).array.reshape(-1)
        if b.size != n_out:
            raise HarnessError(f"node {node.name!r}: {b.size} biases for {n_out} output channels")
        return b
    return None


def _conv_windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int):
    """View (N, OH, OW, KH, KW, C) of a padded NHWC input, without copying."""
    n, h, w, c = x.shape
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (w - dw * (kw - 1) - 1) // sw + 1
    s = x.strides
    view = as_strided(x, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]),
                      writeable=False)
    return view, oh, ow


def _pad_nhwc(x: np.ndarray, pads, value=0) -> np.ndarray:
    top, left, bottom, right = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _conv_params(node: Node):
    a = node.attributes
    k = a.get("kernel_shape")
    if k is None or len(k) != 2:
        raise _unsupported(node, f"kernel_shape {k} (only 2-D convolutions)")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    strides = list(a.get("strides", [1, 1]))
    dil = list(a.get("dilations", [1, 1]))
    if len(pads) != 4 or len(strides) != 2 or len(dil) != 2:
        raise _unsupported(node, f"pads {pads} / strides {strides} / dilations {dil}")
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        raise _unsupported(node, f"auto_pad {a.get('auto_pad')!r}")
    return k, pads, strides, dil


S3_LANE_LIMIT = float(1 << 19)


def _s3_lanes_apply(em: OpContext, x: np.ndarray) -> bool:
    return em.target == "esp32s3" and x.dtype == np.int8


def _note_s3_lanes(em: OpContext, node: Node, worst: float) -> None:
    """ESP32-S3 accumulates int8 MACs in 20-bit lanes that saturate after every MAC; neither esp-ppq nor
    this emulator (exact integer sums) models that, and the kernels' accumulation order is not public
    (prebuilt in esp-dl). When sum |x * w| + |bias| stays below 2^19 no order can saturate, so the result
    is proven exact; otherwise the node is named in `em.notes`."""
    if worst >= S3_LANE_LIMIT:
        em.note(node, f"ESP32-S3 int8 MACs accumulate in 20-bit saturating lanes; here sum |x*w| + |bias| "
                      f"reaches {worst:.0f} (2^{np.log2(worst):.2f} >= 2^19), so the chip may saturate where "
                      f"this emulator computes the exact sum")


def _conv_accumulate(x: np.ndarray, w: np.ndarray, depthwise: bool, geometry) -> tuple[np.ndarray, int, int]:
    """Sum of products of an NHWC input with a (K, N) or depthwise (KH, KW, N) filter, in x's float type."""
    kh, kw, sh, sw, dh, dw, pads = geometry
    n_b, c_in = x.shape[0], x.shape[3]
    xf = _pad_nhwc(x, pads)
    win, oh, ow = _conv_windows(xf, kh, kw, sh, sw, dh, dw)
    if depthwise:
        acc = np.zeros((n_b, oh, ow, c_in), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                acc += win[:, :, :, i, j, :] * w[i, j]
        return acc.reshape(-1, c_in), oh, ow
    if (kh, kw, sh, sw) == (1, 1, 1, 1):
        cols = xf.reshape(-1, c_in)
    else:
        cols = win.reshape(n_b * oh * ow, kh * kw * c_in)
    return cols @ w, oh, ow


@op("Conv")
def conv(em: OpContext, node: Node, xs: list) -> list:
    x, w_name = xs[0], node.inputs[1]
    if x.ndim != 4:
        raise _unsupported(node, f"a {x.ndim}-D input (only NHWC 2-D convolutions)")
    (kh, kw), pads, (sh, sw), (dh, dw) = _conv_params(node)
    weight = em.constant(w_name)
    group = int(node.attributes.get("group", 1))
    n_b, c_in = x.shape[0], x.shape[3]
    depthwise = group != 1
    if depthwise and not (group == c_in and weight.array.shape[2:] == (c_in, 1)):
        raise _unsupported(node, f"group={group} with {c_in} input channels (only 1 or depthwise)")
    if not depthwise and weight.array.shape[:3] != (kh, kw, c_in):
        raise HarnessError(f"node {node.name!r}: filter shape {weight.array.shape} does not fit input {x.shape}")
    n_out = c_in if depthwise else weight.array.shape[3]
    bias = _bias(em, node, n_out)
    wf = em.float_weights(w_name, depthwise)
    # the products' sums decide the matmul's float type; a large bias (a dead channel's can be near
    # -2^31) only moves the addition after it to float64
    mm_bound = float(np.abs(x).max(initial=0)) * wf.colsum_max
    ft = _float_dtype(mm_bound, node)
    at = _float_dtype(mm_bound + wf.bias_max(bias), node)
    geometry = (kh, kw, sh, sw, dh, dw, pads)
    acc, oh, ow = _conv_accumulate(x.astype(ft), wf.get(ft), depthwise, geometry)
    if _s3_lanes_apply(em, x) and mm_bound + wf.bias_max(bias) >= S3_LANE_LIMIT:
        worst = _conv_accumulate(np.abs(x).astype(np.float64), np.abs(wf.get(np.float64)), depthwise, geometry)[0]
        _note_s3_lanes(em, node, float(worst.max(initial=0)) + wf.bias_max(bias))
    acc = acc.astype(at, copy=False)
    if bias is not None:
        acc += bias.astype(at)
    shift = em.exponent(node.outputs[0]) - em.exponent(node.inputs[0]) - _weight_exponents(em, node, w_name, n_out)
    return [_requant(em, node, acc, shift).reshape(n_b, oh, ow, n_out)]


@op("Gemm")
def gemm(em: OpContext, node: Node, xs: list) -> list:
    a = node.attributes
    if float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0 or int(a.get("transA", 0)):
        raise _unsupported(node, "alpha/beta other than 1 or transA")
    if int(a.get("transB", 0)):
        raise _unsupported(node, "transB=1 (esp-ppq's exporter stores B transposed and sets transB=0)")
    x = xs[0]
    w = em.constant(node.inputs[1])
    if w.array.ndim != 4 or w.array.shape[:2] != (1, 1):
        raise _unsupported(node, f"a filter of shape {w.array.shape}")
    k, n_out = w.array.shape[2:]
    if x.shape[-1] != k:
        raise HarnessError(f"node {node.name!r}: input {x.shape} does not match filter K={k}")
    bias = _bias(em, node, n_out)
    wf = em.float_weights(node.inputs[1], False)
    mm_bound = float(np.abs(x).max(initial=0)) * wf.colsum_max
    ft = _float_dtype(mm_bound, node)
    at = _float_dtype(mm_bound + wf.bias_max(bias), node)
    acc = (x.reshape(-1, k).astype(ft) @ wf.get(ft)).astype(at, copy=False)
    if _s3_lanes_apply(em, x) and mm_bound + wf.bias_max(bias) >= S3_LANE_LIMIT:
        worst = np.abs(x.reshape(-1, k)).astype(np.float64) @ np.abs(wf.get(np.float64))
        _note_s3_lanes(em, node, float(worst.max(initial=0)) + wf.bias_max(bias))
    if bias is not None:
        acc += bias.astype(at)
    shift = em.exponent(node.outputs[0]) - em.exponent(node.inputs[0]) - _weight_exponents(
        em, node, node.inputs[1], n_out)
    return [_requant(em, node, acc, shift).reshape(*x.shape[:-1], n_out)]


@op("MatMul")
def matmul(em: OpContext, node: Node, xs: list) -> list:
    a, b = xs
    if a.ndim < 2 or b.ndim < 2:
        raise _unsupported(node, "a 1-D operand")
    k, n_out = b.shape[-2:]
    if a.shape[-1] != k:
        raise HarnessError(f"node {node.name!r}: operands {a.shape} and {b.shape} do not multiply")
    if em.is_constant(node.inputs[1]):
        bmat = em.constant(node.inputs[1]).array
    else:
        layout = node.attributes.get("input1_layout", "packed")
        if layout not in ("packed", "native_kn"):
            raise _unsupported(node, f"input1_layout {layout!r}")
        if layout == "native_kn" and em.features.reads_input1_layout:
            bmat = b
        else:
            if layout == "native_kn":
                em.note(node, f"input1_layout=native_kn is ignored by esp-dl {em.features.version}: the operand "
                              "is read as a packed filter, so this MatMul computes other numbers than esp-ppq meant")
            # esp-dl hands the operand's memory to the conv kernel as a packed (N/align)HWC(align) filter
            align = layouts.align_for(str(node.attributes.get("quant_type", "S8")))
            flat = np.ascontiguousarray(b).reshape(-1, k * n_out)
            bmat = np.stack([layouts.unpack(m, 1, 1, k, n_out, align)[0, 0] for m in flat]).reshape(b.shape)
    e_b = np.asarray(em.exponents_of(node.inputs[1]), dtype=np.int64)
    if e_b.size not in (1, n_out):
        raise HarnessError(f"node {node.name!r}: {e_b.size} exponents for operand B; corrupt model")
    bound = float(np.abs(a).max(initial=0)) * float(np.abs(bmat.astype(np.int64)).sum(axis=-2).max(initial=0))
    ft = _float_dtype(bound, node)
    acc = np.matmul(a.astype(ft), bmat.astype(ft))
    if _s3_lanes_apply(em, a) and bound >= S3_LANE_LIMIT:
        worst = np.matmul(np.abs(a).astype(np.float64), np.abs(bmat.astype(np.float64)))
        _note_s3_lanes(em, node, float(worst.max(initial=0)))
    shift = em.exponent(node.outputs[0]) - em.exponent(node.inputs[0]) - e_b
    return [_requant(em, node, acc, shift)]


def _same_exponents(em: OpContext, node: Node, names: list[str]) -> None:
    """esp-dl's data-movement ops and Add ignore exponents (they copy or add raw integers).

    Emulated as the chip does it; differing exponents are recorded in `em.notes`, since the result
    then differs from what the float model means (esp-ppq normally inserts RequantizeLinear first).
    """
    exps = {em.exponent(n) for n in names if n}
    if len(exps) > 1:
        em.note(node, f"inputs/outputs have differing exponents {sorted(exps)}; esp-dl uses the raw integers")


@op("Add")
def add(em: OpContext, node: Node, xs: list) -> list:
    _same_exponents(em, node, [*node.inputs[:2], node.outputs[0]])
    acc = xs[0].astype(np.int64) + xs[1].astype(np.int64)
    return [saturate(acc, em.out_dtype(node))]


@op("Mul")
def mul(em: OpContext, node: Node, xs: list) -> list:
    acc = xs[0].astype(np.int64) * xs[1].astype(np.int64)
    shift = em.exponent(node.outputs[0]) - em.exponent(node.inputs[0]) - em.exponent(node.inputs[1])
    return [saturate(shift_round(acc, shift, em.even), em.out_dtype(node))]


def _axis(node: Node, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise HarnessError(f"node {node.name!r}: axis {axis} out of range for {ndim} dims")
    return axis % ndim


@op("Concat")
def concat(em: OpContext, node: Node, xs: list) -> list:
    _same_exponents(em, node, [*node.inputs, node.outputs[0]])
    axis = _axis(node, int(node.attributes.get("axis", 0)), xs[0].ndim)
    return [np.concatenate(xs, axis=axis)]


@op("Split")
def split(em: OpContext, node: Node, xs: list) -> list:
    _same_exponents(em, node, [node.inputs[0], *node.outputs])
    x = xs[0]
    axis = _axis(node, int(node.attributes.get("axis", 0)), x.ndim)
    if len(node.inputs) > 1 and node.inputs[1]:
        sizes = [int(s) for s in em.constant(node.inputs[1]).array.reshape(-1)]
    elif "split" in node.attributes:
        sizes = [int(s) for s in node.attributes["split"]]
    else:
        n = len(node.outputs)
        sizes = [-(-x.shape[axis] // n)] * n
        sizes[-1] = x.shape[axis] - sum(sizes[:-1])
    if sum(sizes) != x.shape[axis] or len(sizes) != len(node.outputs):
        raise HarnessError(f"node {node.name!r}: split sizes {sizes} do not fit dim {x.shape[axis]}")
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@op("Slice")
def slice_(em: OpContext, node: Node, xs: list) -> list:
    _same_exponents(em, node, [node.inputs[0], node.outputs[0]])
    x = xs[0]

    def param(i: int):
        if len(node.inputs) > i and node.inputs[i]:
            return [int(v) for v in em.constant(node.inputs[i]).array.reshape(-1)]
        return None

    starts, ends, axes, steps = param(1), param(2), param(3), param(4)
    if starts is None or ends is None:
        raise _unsupported(node, "Slice without constant starts/ends")
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise HarnessError(f"node {node.name!r}: Slice step 0")
        index[_axis(node, ax, x.ndim)] = slice(*slice(s, e, st).indices(x.shape[_axis(node, ax, x.ndim)]))
    return [np.ascontiguousarray(x[tuple(index)])]


@op("Transpose")
def transpose(em: OpContext, node: Node, xs: list) -> list:
    _same_exponents(em, node, [node.inputs[0], node.outputs[0]])
    x = xs[0]
    perm = node.attributes.get("perm")
    perm = [(_axis(node, int(p), x.ndim)) for p in perm] if perm is not None else list(range(x.ndim))[::-1]
    return [np.ascontiguousarray(np.transpose(x, perm))]


@op("Reshape")
def reshape(em: OpContext, node: Node, xs: list) -> list:
    _same_exponents(em, node, [node.inputs[0], node.outputs[0]])
    x = xs[0]
    shape = [int(v) for v in em.constant(node.inputs[1]).array.reshape(-1)]
    allowzero = int(node.attributes.get("allowzero", 0))
    out = [x.shape[i] if (v == 0 and not allowzero and i < x.ndim) else v for i, v in enumerate(shape)]
    try:
        return [x.reshape(out)]
    except ValueError as exc:
        raise HarnessError(f"node {node.name!r}: cannot reshape {x.shape} to {shape}") from exc


@op("Flatten")
def flatten(em: OpContext, node: Node, xs: list) -> list:
    _same_exponents(em, node, [node.inputs[0], node.outputs[0]])
    x = xs[0]
    axis = int(node.attributes.get("axis", 1)) % max(x.ndim, 1)
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


def _pool_params(node: Node, x: np.ndarray):
    if x.ndim != 4:
        raise _unsupported(node, f"a {x.ndim}-D input")
    a = node.attributes
    if int(a.get("ceil_mode", 0)):
        raise _unsupported(node, "ceil_mode=1")
    if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
        raise _unsupported(node, "dilations")
    k = list(a.get("kernel_shape", []))
    if len(k) != 2:
        raise _unsupported(node, f"kernel_shape {k}")
    return k, list(a.get("pads", [0, 0, 0, 0])), list(a.get("strides", [1, 1]))


@op("MaxPool")
def maxpool(em: OpContext, node: Node, xs: list) -> list:
    _same_exponents(em, node, [node.inputs[0], node.outputs[0]])
    x = xs[0]
    (kh, kw), pads, (sh, sw) = _pool_params(node, x)
    low = np.iinfo(x.dtype).min if x.dtype.kind == "i" else -np.inf
    win, oh, ow = _conv_windows(_pad_nhwc(x, pads, low), kh, kw, sh, sw, 1, 1)
    return [win.max(axis=(3, 4))]


def _avg(em: OpContext, node: Node, sums: np.ndarray, area: int) -> np.ndarray:
    """Window sum times 2^e_in / area / 2^e_out, rounded as the chip rounds.

    esp-dl's C kernel multiplies by a float scale; its P4/S3 SIMD kernels multiply by an integer
    reciprocal round(2^p / area) and shift. The two agree exactly when the area is a power of two
    (the reciprocal is exact); for other areas which kernel runs depends on alignment and the SIMD
    rounding of the reciprocal is not emulated, so they are refused.
    """
    if area & (area - 1):
        raise _unsupported(node, f"a pooling area of {area} cells (only powers of two are emulated exactly)")
    shift = em.exponent(node.outputs[0]) - em.exponent(node.inputs[0]) + (area.bit_length() - 1)
    return saturate(shift_round(sums, shift, em.even), em.out_dtype(node))


@op("AveragePool")
def avgpool(em: OpContext, node: Node, xs: list) -> list:
    x = xs[0]
    (kh, kw), pads, (sh, sw) = _pool_params(node, x)
    if any(pads) and int(node.attributes.get("count_include_pad", 0)) == 0:
        raise _unsupported(node, "padding without count_include_pad (a per-window divisor)")
    win, oh, ow = _conv_windows(_pad_nhwc(x.astype(np.int64), pads), kh, kw, sh, sw, 1, 1)
    return [_avg(em, node, win.sum(axis=(3, 4)), kh * kw)]


@op("GlobalAveragePool")
def global_avgpool(em: OpContext, node: Node, xs: list) -> list:
    x = xs[0]
    if x.ndim != 4:
        raise _unsupported(node, f"a {x.ndim}-D input")
    return [_avg(em, node, x.astype(np.int64).sum(axis=(1, 2), keepdims=True), x.shape[1] * x.shape[2])]


@op("Pad")
def pad(em: OpContext, node: Node, xs: list) -> list:
    _same_exponents(em, node, [node.inputs[0], node.outputs[0]])
    x = xs[0]
    mode = node.attributes.get("mode", "constant")
    if mode != "constant":
        raise _unsupported(node, f"mode {mode!r}")
    pads = [int(v) for v in em.constant(node.inputs[1]).array.reshape(-1)] if len(node.inputs) > 1 else list(
        node.attributes.get("pads", []))
    value = 0
    if len(node.inputs) > 2 and node.inputs[2]:
        value = int(em.constant(node.inputs[2]).array.reshape(-1)[0])
    if len(pads) != 2 * x.ndim or any(p < 0 for p in pads):
        raise _unsupported(node, f"pads {pads}")
    width = [(pads[i], pads[i + x.ndim]) for i in range(x.ndim)]
    return [np.pad(x, width, constant_values=value)]


@op("Resize")
def resize(em: OpContext, node: Node, xs: list) -> list:
    x = xs[0]
    mode = node.attributes.get("mode", "nearest")
    if mode != "nearest":
        raise _unsupported(node, f"mode {mode!r} (only nearest)")
    if x.ndim != 4:
        raise _unsupported(node, f"a {x.ndim}-D input")
    h, w = x.shape[1:3]
    if len(node.inputs) > 2 and node.inputs[2]:
        scales = em.constant(node.inputs[2]).array.astype(np.float32).reshape(-1)
        if scales.size != 4:
            raise _unsupported(node, f"scales {scales}")
        sh, sw = np.float32(scales[2]), np.float32(scales[3])  # stored NCHW, data NHWC
    elif len(node.inputs) > 3 and node.inputs[3]:
        sizes = em.constant(node.inputs[3]).array.reshape(-1)
        sh, sw = np.float32(np.float32(sizes[2]) / np.float32(h)), np.float32(np.float32(sizes[3]) / np.float32(w))
    else:
        raise _unsupported(node, "Resize without scales or sizes")
    oh, ow = int(np.float32(h) * sh), int(np.float32(w) * sw)
    # esp-dl: in = min((int)(out * (1 / scale)), size - 1) in float32, whatever the ONNX coordinate mode says
    iy = np.minimum((np.arange(oh, dtype=np.float32) * (np.float32(1) / sh)).astype(np.int64), h - 1)
    ix = np.minimum((np.arange(ow, dtype=np.float32) * (np.float32(1) / sw)).astype(np.int64), w - 1)
    y = x[:, iy][:, :, ix]
    shift = em.exponent(node.outputs[0]) - em.exponent(node.inputs[0])
    if shift:
        y = saturate(shift_round(y, shift, em.even), em.out_dtype(node))
    return [np.ascontiguousarray(y)]


@op("RequantizeLinear")
def requantize(em: OpContext, node: Node, xs: list) -> list:
    x = xs[0]
    if x.dtype.kind == "f":
        return quantize(em, node, xs)
    shift = em.exponent(node.outputs[0]) - em.exponent(node.inputs[0])
    return [saturate(shift_round(x, shift, em.even), em.out_dtype(node))]


@op("QuantizeLinear")
def quantize(em: OpContext, node: Node, xs: list) -> list:
    x = xs[0]
    if x.dtype.kind != "f":
        return requantize(em, node, xs)
    scaled = x.astype(np.float32) * np.float32(2.0 ** -em.exponent(node.outputs[0]))
    return [saturate(round_float(scaled, em.even), em.out_dtype(node))]


@op("DequantizeLinear")
def dequantize(em: OpContext, node: Node, xs: list) -> list:
    return [xs[0].astype(np.float32) * np.float32(2.0 ** em.exponent(node.inputs[0]))]


def _expf(x: np.ndarray) -> np.ndarray:
    """The chip's expf (newlib's fdlibm float routine as GCC compiles it; host.chip.libm, checked
    against the real routine run under qemu-riscv32), element-wise in float32."""
    return np.asarray(chip_expf(np.asarray(x, dtype=np.float32)), dtype=np.float32)


def _sequential_softmax(t: np.ndarray, axis: int) -> np.ndarray:
    """t * (1 / sum(t)) along `axis`, the sum accumulated in order in float32, as the device loop does.

    esp-dl is compiled with -ffast-math, under which GCC hoists one float32 reciprocal per row and
    multiplies (`fdiv.s` once, `fmul.s` in the loop; GCC 12.2, rv32imafc), instead of dividing each element.
    """
    moved = np.moveaxis(t, axis, -1)
    total = np.zeros(moved.shape[:-1], dtype=np.float32)
    for i in range(moved.shape[-1]):
        total = (total + moved[..., i]).astype(np.float32)
    reciprocal = (np.float32(1.0) / total).astype(np.float32)
    return np.moveaxis((moved * reciprocal[..., None]).astype(np.float32), -1, axis)


@op("Softmax")
def softmax(em: OpContext, node: Node, xs: list) -> list:
    x = xs[0]
    axis = _axis(node, int(node.attributes.get("axis", -1)), x.ndim)
    if em.out_dtype(node).kind != "f":
        raise _unsupported(node, "an integer output (esp-dl's Softmax writes float32)")
    if x.dtype == np.int8:
        # 256-entry table expf((i - 128) * 2^e), indexed by the int8 value; no max subtraction
        scale = np.float32(2.0 ** em.exponent(node.inputs[0]))
        table = _expf(np.arange(-128, 128, dtype=np.float32) * scale)
        return [_sequential_softmax(table[x.astype(np.int64) + 128], axis)]
    if x.dtype == np.int16:
        v = x.astype(np.float32) * np.float32(2.0 ** em.exponent(node.inputs[0]))
    else:
        v = x.astype(np.float32)
    v = (v - v.max(axis=axis, keepdims=True)).astype(np.float32)
    return [_sequential_softmax(_expf(v), axis)]


def _lut(em: OpContext, node: Node, x: np.ndarray) -> np.ndarray:
    table = em.constant(node.attributes["lut"]) if isinstance(node.attributes["lut"], str) else None
    if table is None:
        raise HarnessError(f"node {node.name!r}: lut attribute does not name an initializer")
    t = table.array.reshape(-1)
    if table.exponents and table.exponents[0] != em.exponent(node.outputs[0]):
        raise HarnessError(f"node {node.name!r}: LUT exponent {table.exponents[0]} differs from the output's")
    if x.dtype == np.int8:
        if t.size != 256:
            raise HarnessError(f"node {node.name!r}: int8 LUT has {t.size} entries, expected 256")
        return em.lut_u8(node.attributes["lut"], t)[x.view(np.uint8)].astype(em.out_dtype(node), copy=False)
    if x.dtype == np.int16:
        if t.size < 2:
            raise HarnessError(f"node {node.name!r}: int16 LUT has {t.size} entries")
        step = 65536 // (t.size - 1) if t.size != 65536 else 1
        idx = x.astype(np.int64) + 32768
        if step > 1:
            if step & (step - 1):
                raise HarnessError(f"node {node.name!r}: int16 LUT step {step} is not a power of two")
            idx = shift_round(idx, int(step).bit_length() - 1, em.even)
        if idx.max(initial=0) >= t.size:
            raise HarnessError(f"node {node.name!r}: int16 LUT of {t.size} entries is too short")
        return t[idx].astype(em.out_dtype(node))
    raise _unsupported(node, f"a LUT on {x.dtype} input")


def _float_activation(em: OpContext, node: Node, x: np.ndarray, fn) -> np.ndarray:
    v = x.astype(np.float32) * np.float32(2.0 ** em.exponent(node.inputs[0]))
    y = fn(v).astype(np.float32) * np.float32(2.0 ** -em.exponent(node.outputs[0]))
    return saturate(round_float(y, em.even), em.out_dtype(node))


def _sigmoid(v: np.ndarray) -> np.ndarray:
    # dl::math::sigmoid: 1.0 / (1.0 + expf(-x)) with double literals, result stored as float
    return (1.0 / (1.0 + _expf(-v).astype(np.float64))).astype(np.float32)


@op("LUT", "Swish", "Sigmoid", "Relu", "LeakyRelu", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Exp", "Log", "Sqrt",
    "Clip", "PRelu")
def activation(em: OpContext, node: Node, xs: list) -> list:
    x = xs[0]
    if "lut" in node.attributes and x.dtype in (np.int8, np.int16):
        return [_lut(em, node, x)]
    if node.op_type == "Relu":
        y = np.maximum(x, 0)
        shift = em.exponent(node.outputs[0]) - em.exponent(node.inputs[0])
        return [saturate(shift_round(y, shift, em.even), em.out_dtype(node)) if shift else y]
    if node.op_type == "Sigmoid":
        return [_float_activation(em, node, x, _sigmoid)]
    if node.op_type == "Swish":
        return [_float_activation(em, node, x, lambda v: (_sigmoid(v) * v).astype(np.float32))]
    raise _unsupported(node, "this activation without a LUT")
