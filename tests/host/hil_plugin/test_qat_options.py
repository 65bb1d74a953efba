"""The QAT settings from the command line (`python -m host quantize --qat-*`) and from pytest (`--qat-*`)
reach quantization as the same Preset, and are refused, named as typed, before anything is built."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from host.cli.quantize import add_arguments
from host.model.presets import check_qat_overrides, qat_overrides
from host.errors import HarnessError
from host.hil.options import OPTIONS, HilOptions, validate
from host.model.presets import PRESETS, Preset, get_preset
from tests.host.builders import write_images

QAT_ARGS = ("--qat-epochs", "2", "--qat-lr", "1e-5", "--qat-batch", "4")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # validate() creates the default --report-dir, reports/


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    folder = write_images(tmp_path / "qat-data", 2)
    for image in folder.glob("*.png"):
        image.with_suffix(".txt").write_text("0 0.5 0.5 0.2 0.2\n")
    return folder


def _cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args([*argv, "--out", "out"])


def _hil_options(*argv: str) -> HilOptions:
    """The options as pytest would parse them: the plugin's OPTIONS table on a plain parser."""
    parser = argparse.ArgumentParser()
    for flag, kwargs in OPTIONS:
        parser.add_argument(flag, **kwargs)
    parsed = vars(parser.parse_args(["--dut", "sim", *argv]))
    return HilOptions.from_getoption(lambda name, default=None: parsed.get(name, default))


def test_cli_flags_and_pytest_options_give_the_same_preset(labelled: Path) -> None:
    argv = ("--preset", "qat", *QAT_ARGS, "--qat-data", str(labelled))
    overrides = qat_overrides(_cli(*argv))
    assert overrides == {"qat_epochs": 2, "qat_lr": 1e-5, "qat_batch": 4, "qat_data": labelled}
    preset = get_preset("qat", **overrides)
    assert (preset.qat_epochs, preset.qat_lr, preset.qat_batch, preset.qat_data) == (2, 1e-5, 4, str(labelled))
    assert preset.trains and preset.describe()["qat_lr"] == 1e-5

    options = _hil_options(*argv)
    validate(options)
    assert isinstance(options.quantization_preset(), Preset)
    assert options.quantization_preset() == preset


def test_no_flags_keep_the_presets_defaults() -> None:
    assert qat_overrides(_cli("--preset", "qat")) == {}
    assert _hil_options("--preset", "qat").quantization_preset() == PRESETS["qat"]
    assert _hil_options().quantization_preset() == PRESETS["int8"]


def test_some_flags_change_only_their_fields() -> None:
    preset = get_preset("qat", **qat_overrides(_cli("--preset", "qat", "--qat-epochs", "1")))
    assert preset == _hil_options("--preset", "qat", "--qat-epochs", "1").quantization_preset()
    assert (preset.qat_epochs, preset.qat_lr, preset.qat_batch) == (1, PRESETS["qat"].qat_lr, PRESETS["qat"].qat_batch)


@pytest.mark.parametrize("argv, names", [
    (("--preset", "int8", "--qat-lr", "1e-5"), ("--qat-lr only applies to --preset qat, not --preset int8",
                                                 "use --preset qat or drop --qat-lr")),
    (("--preset", "mixed", *QAT_ARGS), ("--qat-epochs, --qat-lr, --qat-batch only apply to --preset qat",)),
    (("--preset", "qat", "--qat-epochs", "0"), ("--qat-epochs 0", "--qat-epochs 4")),
    (("--preset", "qat", "--qat-lr=-1e-5"), ("--qat-lr -1e-05", "positive")),
    (("--preset", "qat", "--qat-lr", "nan"), ("--qat-lr nan", "positive")),
    (("--preset", "qat", "--qat-batch", "0"), ("--qat-batch 0", "--qat-batch 8")),
])
def test_cli_and_pytest_refuse_alike(argv: tuple[str, ...], names: tuple[str, ...]) -> None:
    args = _cli(*argv)
    with pytest.raises(HarnessError) as cli:
        check_qat_overrides(args.preset, qat_overrides(args))
    with pytest.raises(HarnessError) as hil:
        validate(_hil_options(*argv))
    assert str(cli.value) == str(hil.value)
    for text in names:
        assert text in str(cli.value)


def test_a_folder_without_labels_is_named(labelled: Path) -> None:
    next(labelled.glob("*.txt")).unlink()
    with pytest.raises(HarnessError, match=f"--qat-data {labelled}: .*no label file"):
        validate(_hil_options("--preset", "qat", "--qat-data", str(labelled)))
    with pytest.raises(HarnessError, match=f"--qat-data {labelled}: .*no label file"):
        check_qat_overrides("qat", {"qat_data": labelled})
