"""Calibration folders and presets: deterministic digests, the device's letterbox, clear refusals."""

from pathlib import Path

import numpy as np
import pytest

from host.errors import HarnessError
from host.model import calib
from host.chip.targets import check_supported
from host.model.presets import build_setting, get_preset

from tests.host.builders import write_images


def test_digest_changes_with_content_and_not_with_listing_order(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "c", 3)
    first = calib.find_calibration_set(folder)
    assert [p.name for p in first.files] == ["img00.png", "img01.png", "img02.png"]
    assert calib.find_calibration_set(folder).sha256 == first.sha256
    (folder / "img01.png").write_bytes((folder / "img00.png").read_bytes())
    assert calib.find_calibration_set(folder).sha256 != first.sha256


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "absent", "does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "holds no images"),
])
def test_unusable_calibration_folder(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        calib.find_calibration_set(make(tmp_path))


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "c", 2)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    cset = calib.find_calibration_set(folder)
    with pytest.raises(HarnessError, match="broken.png"):
        calib.calibration_tensors(cset, 64)


def test_letterbox_matches_device_geometry_and_pad(tmp_path: Path) -> None:
    rgb = np.full((40, 80, 3), 200, dtype=np.uint8)  # landscape 80x40 into 64x64: 16 rows of pad top and bottom
    chw = calib.letterbox(rgb, 64)
    assert chw.shape == (3, 64, 64)
    assert np.allclose(chw[:, :16, :], 114 / 255) and np.allclose(chw[:, 48:, :], 114 / 255)
    assert np.allclose(chw[:, 16:48, :], 200 / 255)


def test_stretch_fills_the_whole_input() -> None:
    rgb = np.full((40, 80, 3), 200, dtype=np.uint8)
    assert np.allclose(calib.stretch(rgb, 64), 200 / 255, atol=1e-6)


def test_unknown_mode_preset_and_target() -> None:
    with pytest.raises(HarnessError, match="letterbox, stretch|'letterbox', 'stretch'"):
        calib.calibration_tensors(calib.CalibrationSet(Path("."), (), ""), 64, mode="bicubic")
    with pytest.raises(HarnessError, match="unknown preset 'int4'"):
        get_preset("int4")
    with pytest.raises(HarnessError, match="unknown target 'esp32c3'"):
        check_supported("esp32c3")


def test_mixed_preset_refuses_layers_not_in_the_model() -> None:
    preset = get_preset("mixed", int16_layers=("/model.0/conv/Conv", "/nope/Conv"), split_layers=())
    with pytest.raises(HarnessError, match="/nope/Conv"):
        build_setting(preset, "esp32p4", {"/model.0/conv/Conv"})


def test_mixed_preset_dispatches_int16_and_split() -> None:
    preset = get_preset("mixed", int16_layers=("a",), split_layers=("b",))
    setting = build_setting(preset, "esp32p4", {"a", "b"})
    assert setting.weight_split and setting.weight_split_setting.interested_layers == ["b"]
    assert "a" in setting.dispatching_table.dispatchings


def test_tutorial_preset_mirrors_espressif_script() -> None:
    setting = build_setting(get_preset("tutorial"), "esp32p4", set())
    assert setting.quantize_activation_setting.calib_algorithm == "percentile"
    assert setting.bias_correct and setting.tqt_optimization
    assert setting.tqt_optimization_setting.steps == 500
