"""Small ONNX models, one per operator family, quantized with esp-ppq for the emulator's exactness tests.

Each builder returns (onnx.ModelProto, input shapes). Weights are seeded random values scaled so that
activations stay in a useful int8 range; the point is bit-exactness, not accuracy.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def _w(rng: np.random.Generator, name: str, shape: tuple[int, ...], scale: float = 0.3) -> TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _i64(name: str, values: list[int]) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _f32(name: str, values: list[float]) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.float32), name)


def _model(nodes, inputs, outputs, inits, name) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    # onnxsim (inside esp-ppq) needs every graph output typed with a shape: take them from onnxruntime
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {n: np.zeros(s, dtype=np.float32) for n, s in inputs}
    results = sess.run(outputs, feed)
    del model.graph.output[:]
    model.graph.output.extend(
        helper.make_tensor_value_info(n, TensorProto.FLOAT, list(r.shape)) for n, r in zip(outputs, results)
    )
    return model


def conv_model(seed: int = 0):
    """Regular 3x3 conv with padding and fused ReLU, a strided conv, a depthwise conv and an unaligned 1x1."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         name="conv_s2"),
        helper.make_node("Conv", ["c2", "w3", "b3"], ["c3"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=32,
                         name="dwconv"),
        helper.make_node("Conv", ["c3", "w4", "b4"], ["y"], kernel_shape=[1, 1], name="conv_1x1"),
    ]
    inits = [_w(rng, "w1", (24, 3, 3, 3)), _w(rng, "b1", (24,), 0.1),
             _w(rng, "w2", (32, 24, 3, 3), 0.1), _w(rng, "b2", (32,), 0.1),
             _w(rng, "w3", (32, 1, 3, 3)), _w(rng, "b3", (32,), 0.1),
             _w(rng, "w4", (21, 32, 1, 1), 0.2), _w(rng, "b4", (21,), 0.1)]
    return _model(nodes, [("x", [1, 3, 16, 16])], ["y"], inits, "conv"), [(1, 3, 16, 16)]


def lut_model(seed: int = 1):
    """Conv then Swish (x * sigmoid(x), fused by esp-ppq into one LUT node) and a Sigmoid."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Sigmoid", ["c1"], ["s1"], name="sig_for_swish"),
        helper.make_node("Mul", ["c1", "s1"], ["sw"], name="swish_mul"),
        helper.make_node("Conv", ["sw", "w2", "b2"], ["c2"], kernel_shape=[1, 1], name="conv2"),
        helper.make_node("Sigmoid", ["c2"], ["y"], name="sigmoid"),
    ]
    inits = [_w(rng, "w1", (16, 3, 3, 3), 0.8), _w(rng, "b1", (16,), 0.3),
             _w(rng, "w2", (16, 16, 1, 1), 0.5), _w(rng, "b2", (16,), 0.3)]
    return _model(nodes, [("x", [1, 3, 12, 12])], ["y"], inits, "lut"), [(1, 3, 12, 12)]


def eltwise_model(seed: int = 2):
    """Split, Slice, Add with different input scales, Mul, Concat on channels."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[1, 1], name="conv1"),
        helper.make_node("Split", ["c1", "split"], ["s1", "s2"], axis=1, name="split"),
        helper.make_node("Slice", ["c1", "st", "en", "ax"], ["sl"], name="slice"),
        helper.make_node("Conv", ["s2", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Add", ["s1", "c2"], ["a"], name="add"),
        helper.make_node("Mul", ["a", "sl"], ["m"], name="mul"),
        helper.make_node("Concat", ["m", "a", "s2"], ["y"], axis=1, name="concat"),
    ]
    inits = [_w(rng, "w1", (32, 3, 1, 1), 0.8), _w(rng, "b1", (32,), 0.2), _i64("split", [16, 16]),
             _i64("st", [8]), _i64("en", [24]), _i64("ax", [1]),
             _w(rng, "w2", (16, 16, 3, 3), 0.4), _w(rng, "b2", (16,), 0.2)]
    return _model(nodes, [("x", [1, 3, 8, 8])], ["y"], inits, "eltwise"), [(1, 3, 8, 8)]


def pool_resize_model(seed: int = 3):
    """MaxPool 5x5 stride 1 (SPPF style), MaxPool 2x2 stride 2, nearest Resize x2, AveragePool, GAP."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("MaxPool", ["c1"], ["p1"], kernel_shape=[5, 5], pads=[2, 2, 2, 2], strides=[1, 1],
                         name="maxpool5"),
        helper.make_node("MaxPool", ["p1"], ["p2"], kernel_shape=[2, 2], strides=[2, 2], name="maxpool2"),
        helper.make_node("Resize", ["p2", "", "scales"], ["up"], mode="nearest", name="resize"),
        helper.make_node("Add", ["up", "c1"], ["y"], name="add"),
    ]
    inits = [_w(rng, "w1", (16, 3, 3, 3), 0.6), _w(rng, "b1", (16,), 0.2), _f32("scales", [1, 1, 2, 2])]
    return _model(nodes, [("x", [1, 3, 12, 12])], ["y"], inits, "pool"), [(1, 3, 12, 12)]


def attention_model(seed: int = 4):
    """The YOLO11 attention pattern: q k v from a conv, Transpose/Reshape, MatMul, Softmax, MatMul."""
    rng = np.random.default_rng(seed)
    c, h, w = 32, 4, 8  # 32 tokens: a packed (N/16)HWC16 operand differs from row-major only when N != 16
    nodes = [
        helper.make_node("Conv", ["x", "wq", "bq"], ["qkv"], kernel_shape=[1, 1], name="qkv"),
        helper.make_node("Reshape", ["qkv", "shp"], ["qkv_r"], name="reshape"),
        helper.make_node("Split", ["qkv_r", "split"], ["q", "k", "v"], axis=2, name="split"),
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 1, 3, 2], name="q_t"),
        helper.make_node("MatMul", ["qt", "k"], ["att"], name="matmul_qk"),
        helper.make_node("Mul", ["att", "sc"], ["att_s"], name="scale"),
        helper.make_node("Softmax", ["att_s"], ["p"], axis=-1, name="softmax"),
        helper.make_node("Transpose", ["p"], ["pt"], perm=[0, 1, 3, 2], name="p_t"),
        helper.make_node("MatMul", ["v", "pt"], ["o"], name="matmul_pv"),
        helper.make_node("Reshape", ["o", "shp2"], ["o_r"], name="reshape_back"),
        helper.make_node("Conv", ["o_r", "wp", "bp"], ["y"], kernel_shape=[1, 1], name="proj"),
    ]
    inits = [_w(rng, "wq", (3 * c, c, 1, 1), 0.4), _w(rng, "bq", (3 * c,), 0.1), _i64("shp", [1, 2, 48, h * w]),
             _i64("split", [16, 16, 16]), _f32("sc", [0.25]), _i64("shp2", [1, c, h, w]),
             _w(rng, "wp", (c, c, 1, 1), 0.3), _w(rng, "bp", (c,), 0.1)]
    return _model(nodes, [("x", [1, c, h, w])], ["y"], inits, "attention"), [(1, c, h, w)]


def shape_model(seed: int = 5):
    """Transpose and Reshape around convs (channel shuffle), then Gemm on the flattened map."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[1, 1], name="conv1"),
        helper.make_node("Reshape", ["c1", "s1"], ["r1"], name="reshape1"),
        helper.make_node("Transpose", ["r1"], ["t1"], perm=[0, 2, 1, 3, 4], name="shuffle"),
        helper.make_node("Reshape", ["t1", "s2"], ["r2"], name="reshape2"),
        helper.make_node("Conv", ["r2", "w2", "b2"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv2"),
    ]
    inits = [_w(rng, "w1", (16, 3, 1, 1), 0.8), _w(rng, "b1", (16,), 0.2), _i64("s1", [1, 2, 8, 6, 6]),
             _i64("s2", [1, 16, 6, 6]), _w(rng, "w2", (16, 16, 3, 3), 0.3), _w(rng, "b2", (16,), 0.1)]
    return _model(nodes, [("x", [1, 3, 6, 6])], ["y"], inits, "shape"), [(1, 3, 6, 6)]


def misc_model(seed: int = 6):
    """Pad, Relu and LeakyRelu (LUT), AveragePool 2x2, GlobalAveragePool over 4x4, Flatten and Gemm."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["xp"], mode="constant", name="pad"),
        helper.make_node("Conv", ["xp", "w1", "b1"], ["c1"], kernel_shape=[3, 3], name="conv1"),
        helper.make_node("LeakyRelu", ["c1"], ["l1"], alpha=0.1, name="leaky"),
        helper.make_node("AveragePool", ["l1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="avgpool"),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["y"], transB=1, name="gemm"),
    ]
    inits = [_i64("pads", [0, 0, 1, 1, 0, 0, 1, 1]), _w(rng, "w1", (16, 3, 3, 3), 0.6), _w(rng, "b1", (16,), 0.2),
             _w(rng, "w2", (24, 16, 1, 1), 0.4), _w(rng, "b2", (24,), 0.2),
             _w(rng, "wg", (10, 24), 0.5), _w(rng, "bg", (10,), 0.1)]
    return _model(nodes, [("x", [1, 3, 8, 8])], ["y"], inits, "misc"), [(1, 3, 8, 8)]


BUILDERS = {
    "conv": conv_model, "lut": lut_model, "eltwise": eltwise_model, "pool": pool_resize_model,
    "attention": attention_model, "shape": shape_model, "misc": misc_model,
}


def silence_esp_ppq() -> None:
    """Quiet esp-ppq's loggers (about 250 INFO lines per export).

    Its loggers keep the sys.stdout of the moment they were created; under pytest that must be the
    session's stream, not a test's capsys stream that closes afterwards - so import esp_ppq early
    (conftest does) and never create loggers here.
    """
    import esp_ppq  # noqa: F401  (creates its loggers)
    from esp_ppq.log import logger as ppq_logger

    for lg in ppq_logger.initialized_loggers.values():
        lg.set_level("error")
    logging.getLogger("esp_ppq").setLevel(logging.WARNING)


def quantize(model: onnx.ModelProto, shapes, out_dir: Path, name: str, target: str, bits: int = 8,
             seed: int = 0, int16_ops: tuple[str, ...] = ()) -> Path:
    """Quantize with esp-ppq's espdl_quantize_onnx, exporting test values for a seeded input."""
    import torch
    from esp_ppq.api import espdl_quantize_onnx, get_target_platform
    from esp_ppq.api.setting import QuantizationSettingFactory

    silence_esp_ppq()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    onnx.save(model, onnx_path)
    work = out_dir / f"{name}.work.onnx"  # esp-ppq overwrites its input file: give it a copy
    shutil.copy(onnx_path, work)
    gen = torch.Generator().manual_seed(seed)
    calib = [[torch.rand(s, generator=gen) * 2 - 1 for s in shapes] for _ in range(4)]
    test_inputs = [torch.rand(s, generator=gen) * 2 - 1 for s in shapes]
    setting = QuantizationSettingFactory.espdl_setting()
    # min-max calibration: exactness does not depend on the ranges, and KL calibration is most of the time
    setting.quantize_activation_setting.calib_algorithm = "minmax"
    for op_name in int16_ops:
        setting.dispatching_table.append(op_name, get_target_platform(target, 16))
    espdl = out_dir / f"{name}.espdl"
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        espdl_quantize_onnx(
            onnx_import_file=str(work), espdl_export_file=str(espdl),
            calib_dataloader=[c if len(c) > 1 else c[0] for c in calib], calib_steps=4,
            input_shape=[list(s) for s in shapes] if len(shapes) > 1 else list(shapes[0]),
            inputs=test_inputs,
            target=target, num_of_bits=bits, collate_fn=lambda x: x, setting=setting, device="cpu",
            error_report=False, skip_export=False, export_config=False, export_test_values=True, verbose=0,
        )
    return espdl
