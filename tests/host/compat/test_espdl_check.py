"""`espdl check` and the esp-ppq x esp-dl pairing: the pinned pair runs right, the skewed one is caught by name."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest

from host.chip.releases import FIRMWARE_ESPDL_VERSION, espdl_features
from host.model import compat
from host.espdl import Emulator, load, selftest
from host.espdl.check import check_bytes, check_model, errors

MATMUL = "/attn/MatMul"


def _attention_onnx(path: Path) -> Path:
    """conv -> q, k from one activation -> softmax(q^T k) -> MatMul with v: activation x activation MatMuls."""
    import torch
    from torch import nn

    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.qkv = nn.Conv2d(3, 48, 1)

        def forward(self, x):
            q, k, v = self.qkv(x).view(-1, 48, 64).split([16, 16, 16], dim=1)
            attn = (q.transpose(-2, -1) @ k).softmax(dim=-1)
            return (v @ attn.transpose(-2, -1)).view(-1, 16, 8, 8)

    torch.onnx.export(Attn().eval(), (torch.zeros(1, 3, 8, 8),), str(path), opset_version=13,
                      input_names=["images"], output_names=["out"], dynamo=False)
    import onnx

    model = onnx.load(str(path))
    for i, node in enumerate(n for n in model.graph.node if n.op_type == "MatMul"):
        node.name = MATMUL + ("" if i == 0 else f"_{i}")
    onnx.save(model, str(path))
    return path


def _quantize(onnx_path: Path, out: Path, adjusted: bool) -> Path:
    import torch
    from esp_ppq.api import espdl_quantize_onnx
    from esp_ppq import QuantizationSettingFactory

    work = out.with_suffix(".onnx")
    shutil.copyfile(onnx_path, work)
    rng = np.random.default_rng(0)
    data = [torch.from_numpy(rng.random((4, 3, 8, 8), dtype=np.float32)) for _ in range(2)]
    setting = QuantizationSettingFactory.espdl_setting()
    adjustments = compat.export_adjustments() if adjusted else {"force_packed_matmul": False, "attention_fusion": False}
    compat.apply_to_setting(setting, adjustments)
    with compat.exporter_adjusted(adjustments):
        espdl_quantize_onnx(onnx_import_file=str(work), espdl_export_file=str(out), calib_dataloader=data,
                            calib_steps=2, input_shape=[1, 3, 8, 8], inputs=[data[0][:1]], target="esp32p4",
                            collate_fn=lambda x: x, setting=setting, device="cpu", error_report=False,
                            export_config=False, export_test_values=True, verbose=0)
    return out


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("compat")
    onnx_path = _attention_onnx(root / "attn.onnx")
    return {"pinned": _quantize(onnx_path, root / "pinned.espdl", adjusted=True),
            "skewed": _quantize(onnx_path, root / "skewed.espdl", adjusted=False)}


def test_pinned_pair_runs_right_on_the_firmware_espdl(exports) -> None:
    model = load(exports["pinned"])
    layouts = {n.name: n.attributes.get("input1_layout") for n in model.nodes if n.op_type == "MatMul"}
    assert layouts and set(layouts.values()) == {"packed"}, layouts
    assert selftest(model, "esp32p4", FIRMWARE_ESPDL_VERSION).ok
    assert errors(check_bytes(exports["pinned"].read_bytes(), partition_size=None)) == []


def test_skewed_pair_is_caught_by_name(exports) -> None:
    model = load(exports["skewed"])
    native = [n.name for n in model.nodes if n.attributes.get("input1_layout") == "native_kn"]
    assert native, "esp-ppq >= 1.3.10 should mark activation x activation MatMuls native_kn"
    assert not selftest(model, "esp32p4", "3.3.9").ok  # esp-dl 3.3.9 would compute other numbers
    assert selftest(model, "esp32p4", "native").ok  # an esp-dl that reads the attribute would not
    found = errors(check_bytes(exports["skewed"].read_bytes(), partition_size=None))
    assert {f.node for f in found if f.code == "ignored_layout"} == set(native)


def test_too_large_and_encrypted(exports) -> None:
    from host.espdl.container import read_edl2, write_edl2

    data = exports["pinned"].read_bytes()
    assert [f.code for f in errors(check_bytes(data, partition_size=100))] == ["too_large"]
    key = bytes(range(16))
    sealed = write_edl2(read_edl2(data).payload, key)
    assert [f.code for f in errors(check_bytes(sealed, partition_size=None))] == ["encrypted"]
    assert errors(check_bytes(sealed, partition_size=None, key=key)) == []


def _mutated(path: Path, mutate) -> list:
    model = copy.deepcopy(load(path))
    mutate(model)
    return check_model(model, "esp32p4", espdl_features())


def test_broken_invariants_are_named(exports) -> None:
    def grouped(model):
        conv = next(n for n in model.nodes if n.op_type == "Conv")
        conv.attributes["group"] = 3

    def bias(model):
        conv = next(n for n in model.nodes if n.op_type == "Conv")
        b = model.initializers[conv.inputs[2]]
        b.exponents = tuple(e + 1 for e in b.exponents)

    def quant(model):
        model.nodes[0].attributes["quant_type"] = "W8A16"

    def no_tests(model):
        model.test_inputs.clear()

    for mutate, code in ((grouped, "grouped_conv"), (bias, "bias_exponent"), (quant, "quant_type")):
        assert code in {f.code for f in errors(_mutated(exports["pinned"], mutate))}, code
    warnings = _mutated(exports["pinned"], no_tests)
    assert [f.code for f in warnings if f.level == "warning"] == ["no_test_values"]


def test_sim_dut_refuses_a_skewed_model_before_loading_it(exports, tmp_path: Path) -> None:
    from host.dut.sim.backend import open_sim
    from host.errors import HarnessError
    from host.espdl import write_pdl3

    pack = tmp_path / "pack.bin"
    pack.write_bytes(write_pdl3({"model": exports["skewed"].read_bytes()}))
    with pytest.raises(HarnessError, match="ignored_layout"):
        open_sim(pack, "esp32p4")


def test_cli_exit_status_and_json(exports, capsys) -> None:
    import json

    from host.cli import main

    assert main(["espdl", "check", str(exports["pinned"])]) == 0
    capsys.readouterr()
    assert main(["espdl", "check", str(exports["skewed"]), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["espdl_version"] == FIRMWARE_ESPDL_VERSION and report["errors"] >= 1
    assert any(f["code"] == "ignored_layout" and f["node"].startswith(MATMUL) for f in report["findings"])
    assert main(["espdl", "check", str(exports["skewed"]), "--espdl-version", "9.9.9"]) == 2  # unknown release
