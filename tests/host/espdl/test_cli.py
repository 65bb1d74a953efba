"""`python -m host espdl ...`: info, pack, selftest exit codes and error messages."""

from __future__ import annotations

import json

import pytest

from host.cli import main
from host.espdl import container


def test_info_json(quantized, capsys):
    path = quantized.get("attention", "esp32p4")
    capsys.readouterr()  # esp-ppq prints a banner when first imported
    assert main(["espdl", "info", str(path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["format"] == "EDL2" and len(facts["sha256"]) == 64
    assert facts["ops"]["MatMul"] == 2 and facts["matmul_input1_layouts"] == ["native_kn"]
    assert facts["inputs"][0]["shape"] == [1, 4, 8, 32]
    assert facts["test_values"] == {"inputs": ["x"], "outputs": ["y"]}


def test_pack_then_info_and_selftest_by_name(quantized, tmp_path, capsys):
    conv, pool = quantized.get("conv", "esp32p4"), quantized.get("pool", "esp32p4")
    out = tmp_path / "models.bin"
    assert main(["espdl", "pack", str(out), f"conv={conv}", f"pool={pool}"]) == 0
    assert container.read_pdl3(out.read_bytes()).names() == ["conv", "pool"]
    capsys.readouterr()
    assert main(["espdl", "info", str(out), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in facts["models"]] == ["conv", "pool"]
    assert facts["models"][1]["ops"]["MaxPool"] == 2
    assert main(["espdl", "selftest", str(out), "--name", "pool"]) == 0
    assert "selftest passed" in capsys.readouterr().out


def test_selftest_exit_codes(quantized, capsys):
    path = str(quantized.get("attention", "esp32s3"))
    capsys.readouterr()
    assert main(["espdl", "selftest", path, "--target", "esp32s3", "--espdl-version", "native"]) == 0
    assert main(["espdl", "selftest", path, "--target", "esp32s3", "--espdl-version", "3.3.9"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["espdl", "info", "/nonexistent.espdl"], "does not exist"),
    (["espdl", "pack", "/tmp/x.bin", "no-equals-sign"], "NAME=FILE"),
])
def test_errors_exit_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_encrypted_model_needs_key(quantized, tmp_path, capsys):
    plain = quantized.get("shape", "esp32p4").read_bytes()
    key = bytes(range(16))
    enc = tmp_path / "enc.espdl"
    enc.write_bytes(container.write_edl2(container.read_edl2(plain).payload, key=key))
    capsys.readouterr()
    assert main(["espdl", "info", str(enc)]) == 2
    assert "encrypted" in capsys.readouterr().err
    assert main(["espdl", "selftest", str(enc), "--key", key.hex(), "--espdl-version", "native"]) == 0
    capsys.readouterr()
    assert main(["espdl", "info", str(enc), "--key", key.hex(), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["encrypted"] is True and facts["ops"]["Conv"] == 2
