"""ESP-DL's Softmax as the reference computes it: the device's loop, element by element."""

from __future__ import annotations

import numpy as np
import pytest

from host.errors import HarnessError
from host.chip.libm import expf_of_multiples
from host.reference.softmax import espdl_softmax


def _device_loop(q: np.ndarray, exponent: int) -> np.ndarray:
    """dl_module_softmax.hpp for the last axis, one float32 scalar at a time, as compiled with -ffast-math:
    int8 -> table lookup without max subtraction; int16 -> expf(x - max); sum in order; x * (1 / sum)."""
    rows = q.reshape(-1, q.shape[-1]).astype(np.int64)
    out = np.empty(rows.shape, dtype=np.float32)
    for r, row in enumerate(rows):
        args = row - row.max() if q.dtype == np.int16 else row
        values = [np.float32(expf_of_multiples(np.array([a]), exponent)[0]) for a in args]
        total = np.float32(0.0)
        for v in values:
            total = np.float32(total + v)
        reciprocal = np.float32(np.float32(1.0) / total)
        out[r] = [np.float32(v * reciprocal) for v in values]
    return out.reshape(q.shape)


@pytest.mark.parametrize("dtype, exponent", [(np.int8, -5), (np.int8, -3), (np.int8, -7), (np.int16, -12)])
def test_matches_the_device_loop_bit_for_bit(dtype, exponent) -> None:
    rng = np.random.default_rng(abs(exponent))
    info = np.iinfo(dtype)
    q = rng.integers(info.min, info.max + 1, size=(2, 3, 37)).astype(dtype)
    ours = espdl_softmax(q, exponent)
    want = _device_loop(q, exponent)
    assert ours.dtype == np.float32
    assert np.array_equal(ours.view(np.int32), want.view(np.int32))


def test_other_axis_is_the_last_axis_moved() -> None:
    rng = np.random.default_rng(7)
    q = rng.integers(-128, 128, size=(1, 9, 4, 5)).astype(np.int8)
    on_axis1 = espdl_softmax(q, -4, axis=1)
    moved = np.moveaxis(espdl_softmax(np.moveaxis(q, 1, -1), -4), -1, 1)
    assert np.array_equal(on_axis1, moved)


def test_close_to_the_mathematical_softmax_but_not_identical_to_a_division() -> None:
    """Within a few float32 ulps of softmax; and the -ffast-math reciprocal is modelled, not `x / sum`
    (the two differ in the last bit of some elements: 1000 rows of 100 make that certain)."""
    rng = np.random.default_rng(3)
    q = rng.integers(-128, 128, size=(1000, 100)).astype(np.int8)
    ours = espdl_softmax(q, -5)
    x = q.astype(np.float64) * 2.0**-5
    exact = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    assert np.allclose(ours, exact, rtol=1e-5, atol=0)
    e = expf_of_multiples(q, -5)
    total = np.zeros(q.shape[0], dtype=np.float32)
    for i in range(q.shape[1]):
        total = total + e[:, i]
    divided = e / total[:, None]
    assert not np.array_equal(ours, divided)


def test_refuses_float_input() -> None:
    with pytest.raises(HarnessError, match="int8 or int16"):
        espdl_softmax(np.zeros((2, 3), dtype=np.float32), -5)
