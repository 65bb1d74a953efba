"""Reading a .espdl: graph I/O, nodes, attributes, initializers in natural layout, test values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.espdl import layouts, load
from tests.host.espdl import _builders


@pytest.fixture(scope="module")
def conv_model(quantized):
    return load(quantized.get("conv", "esp32p4"))


def test_graph_io_shapes_and_exponents(conv_model):
    assert [(v.name, v.dtype.name, v.shape) for v in conv_model.inputs] == [("x", "int8", (1, 16, 16, 3))]
    assert [(v.name, v.shape) for v in conv_model.outputs] == [("y", (1, 8, 8, 21))]
    assert -10 <= conv_model.inputs[0].exponent <= 0
    assert conv_model.op_histogram() == {"Conv": 4}
    dw = next(n for n in conv_model.nodes if n.name == "dwconv")
    assert dw.attributes["group"] == 32 and dw.attributes["kernel_shape"] == [3, 3]
    assert dw.attributes["quant_type"] == "S8"
    assert len(conv_model.sha256) == 64


def test_test_values_are_exposed(conv_model):
    assert set(conv_model.test_inputs) == {"x"} and set(conv_model.test_outputs) == {"y"}
    assert conv_model.test_inputs["x"].array.shape == (1, 16, 16, 3)
    assert conv_model.test_outputs["y"].array.dtype == np.int8


@pytest.mark.parametrize("name, depthwise", [("w1", False), ("w2", False), ("w3", True), ("w4", False)])
def test_conv_filters_unpack_to_the_onnx_weights(conv_model, name, depthwise):
    """Dequantized natural-layout filters equal the float ONNX filters within half a quantization step:
    a wrong unpacking (channel order, 16-block layout, unaligned tail) would be far off."""
    onnx_model, _ = _builders.conv_model()
    ref = {t.name: t for t in onnx_model.graph.initializer}[name]
    from onnx import numpy_helper

    w_float = numpy_helper.to_array(ref)  # OIHW
    t = conv_model.initializers[name]
    exps = np.asarray(t.exponents, dtype=np.float64)
    if depthwise:
        natural = t.array[:, :, :, 0].transpose(2, 0, 1)[:, None]  # (KH, KW, N, 1) -> (N, 1, KH, KW)
    else:
        natural = t.array.transpose(3, 2, 0, 1)  # (KH, KW, C, N) -> OIHW
    step = np.exp2(exps).reshape(-1, 1, 1, 1)
    err = np.abs(natural * step - w_float)
    assert t.layout.startswith("(N/16)HWC16")
    assert np.all(err <= step / 2 + 1e-7)


@settings(max_examples=60, deadline=None)
@given(kh=st.integers(1, 3), c=st.integers(1, 5), n=st.integers(1, 40), align=st.sampled_from([8, 16]),
       depthwise=st.booleans())
def test_pack_unpack_are_inverse(kh, c, n, align, depthwise):
    rng = np.random.default_rng(n * 100 + c)
    shape = (kh, kh, n, 1) if depthwise else (kh, kh, c, n)
    w = rng.integers(-128, 128, size=shape)
    packed = layouts.pack(w, align, depthwise)
    assert np.array_equal(layouts.unpack(packed, kh, kh, 1 if depthwise else c, n, align, depthwise), w)
    if n % align == 0 and not depthwise:
        # the first output channel's filter is every align-th value of the first block
        assert np.array_equal(packed[: kh * kh * c * align : align], w[..., 0].reshape(-1))
