"""Split-head export: six named raw head outputs, equal to PyTorch, and bad ONNX files refused."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from host.errors import HarnessError
from host.chip.detection import OUTPUT_NAMES
from host.model.export import check_split_head_onnx, export_onnx, load_torch_model, run_onnx
from host.model.source import resolve_model


@pytest.fixture(scope="module")
def yolo11n():
    model = load_torch_model(resolve_model("yolo11n.yaml"))
    import torch

    torch.manual_seed(0)
    with torch.no_grad():  # random-init BN statistics give near-constant outputs; perturb them
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def test_export_has_six_outputs_matching_pytorch(yolo11n, tmp_path: Path) -> None:
    out = tmp_path / "y.onnx"
    check = export_onnx(yolo11n, 96, out)
    assert check_split_head_onnx(out) == 96
    assert check.max_abs_diff < 1e-3, check.per_output
    got = run_onnx(out, np.random.default_rng(0).random((1, 3, 96, 96), dtype=np.float32))
    shapes = {name: got[name].shape for name in OUTPUT_NAMES}
    assert shapes == {
        "box0": (1, 64, 12, 12), "score0": (1, 80, 12, 12),
        "box1": (1, 64, 6, 6), "score1": (1, 80, 6, 6),
        "box2": (1, 64, 3, 3), "score2": (1, 80, 3, 3),
    }
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "MatMul" in ops and "Softmax" in ops  # the attention block survived as primitives


def test_export_is_byte_deterministic(yolo11n, tmp_path: Path) -> None:
    export_onnx(yolo11n, 64, tmp_path / "a.onnx")
    export_onnx(yolo11n, 64, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_imgsz_must_be_a_multiple_of_32(yolo11n, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="multiple of 32"):
        export_onnx(yolo11n, 100, tmp_path / "x.onnx")


def _onnx_with_outputs(path: Path, names: list[str], shape=(1, 3, 64, 64)) -> Path:
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, list(shape))
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape)) for n in names]
    nodes = [helper.make_node("Identity", ["images"], [n]) for n in names]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], outs)), str(path))
    return path


def test_onnx_without_the_six_outputs_is_refused(tmp_path: Path) -> None:
    path = _onnx_with_outputs(tmp_path / "m.onnx", ["output0"])
    with pytest.raises(HarnessError, match="box0, score0|'box0', 'score0'"):
        check_split_head_onnx(path)


def test_onnx_with_non_square_input_is_refused(tmp_path: Path) -> None:
    path = _onnx_with_outputs(tmp_path / "m.onnx", list(OUTPUT_NAMES), shape=(1, 3, 64, 32))
    with pytest.raises(HarnessError, match=r"\[1, 3, S, S\]"):
        check_split_head_onnx(path)


def test_not_a_model_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 this is not protobuf" * 10)
    with pytest.raises(HarnessError, match="not a readable ONNX model"):
        check_split_head_onnx(junk)
