"""Filter layouts: esp-dl's packed (N/16)HWC16 / (N/8)HWC8 weights to and from a natural HWIO array.

Written from esp-ppq's ResetParamLayoutPattern (the exporter) and esp-dl's conv kernels (the reader):
the first align*floor(N/align) output channels are stored as (N/align, KH, KW, C, align), the rest in
plain (N_rest, KH, KW, C). Depthwise filters (C == 1 per group) store (N/align, KH, KW, align) and the
rest as (KH, KW, N_rest). align is 16 for int8 layers and 8 for int16 and W8A16 layers. The stored dims
are [KH, KW, C, N] ([KH, KW, N, 1] for depthwise) whatever the element order.
"""

from __future__ import annotations

import numpy as np


def align_for(quant_type: str) -> int:
    return 16 if quant_type == "S8" else 8


def unpack(flat: np.ndarray, kh: int, kw: int, c: int, n: int, align: int, depthwise: bool = False) -> np.ndarray:
    """Packed filter memory -> natural array: (KH, KW, C, N), or (KH, KW, N, 1) for depthwise."""
    flat = np.ascontiguousarray(flat).reshape(-1)
    n_al = n // align * align
    if depthwise:
        head = flat[: n_al * kh * kw].reshape(n // align, kh, kw, align).transpose(1, 2, 0, 3).reshape(kh, kw, n_al)
        tail = flat[n_al * kh * kw : n * kh * kw].reshape(kh, kw, n - n_al)
        return np.concatenate([head, tail], axis=2).reshape(kh, kw, n, 1)
    size = kh * kw * c
    head = flat[: n_al * size].reshape(n // align, kh, kw, c, align).transpose(1, 2, 3, 0, 4).reshape(kh, kw, c, n_al)
    tail = flat[n_al * size : n * size].reshape(n - n_al, kh, kw, c).transpose(1, 2, 3, 0)
    return np.concatenate([head, tail], axis=3)


def pack(w: np.ndarray, align: int, depthwise: bool = False) -> np.ndarray:
    """Natural array (as `unpack` returns it) -> packed flat memory; the exact inverse of `unpack`."""
    if depthwise:
        kh, kw, n, _ = w.shape
        n_al = n // align * align
        w3 = w.reshape(kh, kw, n)
        head = w3[:, :, :n_al].reshape(kh, kw, n // align, align).transpose(2, 0, 1, 3).reshape(-1)
        return np.concatenate([head, w3[:, :, n_al:].reshape(-1)])
    kh, kw, c, n = w.shape
    n_al = n // align * align
    head = w[..., :n_al].reshape(kh, kw, c, n // align, align).transpose(3, 0, 1, 2, 4).reshape(-1)
    tail = w[..., n_al:].transpose(3, 0, 1, 2).reshape(-1)
    return np.concatenate([head, tail])
