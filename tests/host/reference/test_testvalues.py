"""Embedded test outputs: rewritten in place to the chip's values when both chip models agree."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from host.errors import HarnessError
from host.espdl import load, load_bytes
from host.espdl.testvalues import rewrite_test_outputs
from host.model.quantize import align_test_values


def _graph(tiny_model):
    from esp_ppq.api import load_native_graph

    return load_native_graph(str(tiny_model.graph_path))


def test_rewrite_changes_only_the_named_tensor_bytes(tiny_model) -> None:
    data = tiny_model.espdl_path.read_bytes()
    model = load(tiny_model.espdl_path)
    old = model.test_outputs["score1"].array
    new = old.copy()
    new.reshape(-1)[::7] = np.clip(new.reshape(-1)[::7].astype(np.int64) + 3, -128, 127).astype(old.dtype)
    patched = rewrite_test_outputs(data, {"score1": new})
    assert len(patched) == len(data)
    reloaded = load_bytes(patched)
    assert np.array_equal(reloaded.test_outputs["score1"].array, new)
    for name in model.test_outputs:
        if name != "score1":
            assert np.array_equal(reloaded.test_outputs[name].array, model.test_outputs[name].array)
    changed = np.flatnonzero(np.frombuffer(patched, np.uint8) != np.frombuffer(data, np.uint8))
    assert changed.size > 0 and changed.max() - changed.min() < old.size  # all inside one tensor's bytes


def test_rewrite_refuses_wrong_shapes_types_and_names(tiny_model) -> None:
    data = tiny_model.espdl_path.read_bytes()
    arr = load(tiny_model.espdl_path).test_outputs["box0"].array
    with pytest.raises(HarnessError, match="holds"):
        rewrite_test_outputs(data, {"box0": arr[:-1]})
    with pytest.raises(HarnessError, match="holds"):
        rewrite_test_outputs(data, {"box0": arr.astype(np.int16)})
    with pytest.raises(HarnessError, match="no embedded test outputs named nope"):
        rewrite_test_outputs(data, {"nope": arr})


def test_align_restores_the_chip_values_and_leaves_correct_files_alone(tiny_model, tmp_path) -> None:
    path = tmp_path / "model.espdl"
    shutil.copyfile(tiny_model.espdl_path, path)
    graph = _graph(tiny_model)
    # the tiny model is exported by plain esp-ppq, without the adjustments for the firmware's esp-dl 3.3.9
    report = align_test_values(path, graph, tiny_model.target, "native")
    assert report["status"] == "as exported" and report["emulator_equals_reference"]
    assert path.read_bytes() == tiny_model.espdl_path.read_bytes()

    # what esp-ppq's float simulation can do: miss the chip by one step in a few values
    wrong = load(path).test_outputs["box2"].array.copy()
    wrong.reshape(-1)[:5] = np.clip(wrong.reshape(-1)[:5].astype(np.int64) - 1, -128, 127).astype(wrong.dtype)
    path.write_bytes(rewrite_test_outputs(path.read_bytes(), {"box2": wrong}))
    report = align_test_values(path, graph, tiny_model.target, "native")
    assert report["status"] == "rewritten to the chip's values"
    assert 0 < report["differing_values"]["box2"] <= 5
    assert path.read_bytes() == tiny_model.espdl_path.read_bytes()
