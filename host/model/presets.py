"""Named ESP-PPQ quantization presets, as plain data (for cache keys) and as QuantizationSettings.

- `int8`: ESP-PPQ's default ESP-DL setting, 8-bit everywhere (the tutorial's first recipe).
- `mixed`: chosen layers in int16 plus horizontal weight split of chosen layers, the tutorial's
  mixed-precision recipe; both layer lists are configurable.
- `tutorial`: percentile calibration + bias correction + TQT, as Espressif's quantize script
  (`tqt_steps` defaults to Espressif's 500; lower it for quick runs).
- `qat`: the `int8` recipe, then quantization-aware training of the int8 graph on labelled images
  (host/model/qat.py; the tutorial's third recipe). `qat_epochs`, `qat_lr`, `qat_batch` set the
  training, `qat_data` the labelled folder (None: a synthetic set generated once into the cache).
  The `qat_*` fields are left out of `describe()` for presets that do not train, so adding them
  changed no other preset's cache key.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from host.errors import HarnessError

#: YOLO11n layers that carry the largest int8 error on the fixture model and COCO alike: the first
#: conv (raw pixels) and the head's final 1x1 box convs, whose outputs feed DFL directly.
DEFAULT_INT16_LAYERS = ("/model.0/conv/Conv", "/model.23/cv2.0/cv2.0.2/Conv")
DEFAULT_SPLIT_LAYERS = ("/model.1/conv/Conv",)
#: QAT defaults (see docs/recipes.md for what they cost at 320 on a 2-core machine).
QAT_EPOCHS = 4
QAT_LR = 3e-5
QAT_BATCH = 8


@dataclass(frozen=True)
class Preset:
    """Everything about a quantization recipe that changes the resulting .espdl."""

    name: str
    calib_algorithm: str = "kl"
    int16_layers: tuple[str, ...] = ()
    split_layers: tuple[str, ...] = ()
    split_threshold: float = 2.0
    bias_correct: bool = False
    tqt_steps: int = 0
    batch_size: int = 8
    qat_epochs: int = 0  # 0: no quantization-aware training (every preset but qat)
    qat_lr: float = 0.0
    qat_batch: int = 0
    qat_data: str | None = None  # labelled image folder; None: the default synthetic set (host.model.qat)

    @property
    def trains(self) -> bool:
        """Whether this recipe runs quantization-aware training after calibration."""
        return self.name == "qat" or self.qat_epochs != 0

    def describe(self) -> dict:
        described = asdict(self)
        if not self.trains:
            described = {k: v for k, v in described.items() if not k.startswith("qat_")}
        return described


#: Preset field -> the flag that sets it, as the user types it (messages name the flag, not the field).
QAT_FLAGS = {"qat_epochs": "--qat-epochs", "qat_lr": "--qat-lr", "qat_batch": "--qat-batch",
             "qat_data": "--qat-data"}

PRESETS: dict[str, Preset] = {
    "int8": Preset("int8"),
    "mixed": Preset("mixed", int16_layers=DEFAULT_INT16_LAYERS, split_layers=DEFAULT_SPLIT_LAYERS),
    "tutorial": Preset("tutorial", calib_algorithm="percentile", bias_correct=True, tqt_steps=500),
    "qat": Preset("qat", qat_epochs=QAT_EPOCHS, qat_lr=QAT_LR, qat_batch=QAT_BATCH),
}


def get_preset(name: str, **overrides) -> Preset:
    """The named preset with optional field overrides (e.g. int16_layers=(...), tqt_steps=50)."""
    if name not in PRESETS:
        raise HarnessError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    unknown = set(overrides) - set(Preset.__dataclass_fields__)
    if unknown:
        raise HarnessError(f"unknown preset option(s) {sorted(unknown)} for preset {name!r}")
    given = {k: v for k, v in overrides.items() if v is not None}
    qat_given = sorted(k for k in given if k.startswith("qat_"))
    if qat_given and not PRESETS[name].trains:
        raise HarnessError(f"{', '.join(qat_given)} only apply to preset qat, not {name!r}; use --preset qat")
    if "qat_data" in given:
        given["qat_data"] = str(given["qat_data"])
    return replace(PRESETS[name], **given)


def qat_overrides(settings: object) -> dict:
    """The `qat_*` settings given on `settings` (parsed CLI arguments or the pytest options), as Preset fields
    for get_preset: one left out (None) keeps the preset's default."""
    return {field: getattr(settings, field) for field in QAT_FLAGS if getattr(settings, field, None) is not None}


def check_qat_overrides(preset: str, overrides: dict) -> None:
    """Refuse `--qat-*` settings that cannot train, or that a preset without training would silently ignore,
    naming the flag as typed (`python -m host quantize|recipes` and pytest's options share it); runs before
    any export, as the same checks deeper down name Preset fields instead."""
    from host.model import qat

    flags = [QAT_FLAGS[field] for field in overrides]
    if flags and not PRESETS[preset].trains:
        raise HarnessError(f"{', '.join(flags)} only {'applies' if len(flags) == 1 else 'apply'} to --preset qat, "
                           f"not --preset {preset}; use --preset qat or drop {', '.join(flags)}")
    epochs, lr, batch = (overrides.get(f) for f in ("qat_epochs", "qat_lr", "qat_batch"))
    if epochs is not None and epochs < 1:
        raise HarnessError(f"--qat-epochs {epochs} is out of range: QAT needs at least 1 epoch; "
                           f"pass e.g. --qat-epochs {QAT_EPOCHS} (or --preset int8 for no training)")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise HarnessError(f"--qat-lr {lr:g} is out of range: give a positive learning rate, e.g. --qat-lr {QAT_LR:g}")
    if batch is not None and batch < 1:
        raise HarnessError(f"--qat-batch {batch} is out of range: give at least 1 image per step, "
                           f"e.g. --qat-batch {QAT_BATCH}")
    folder = overrides.get("qat_data")
    if folder is not None:
        if not Path(folder).is_dir():
            raise HarnessError(f"--qat-data {folder} is not a folder; pass a folder of YOLO-labelled images, e.g. "
                               "made by `python -m tools.dataset --seed 11 --out DIR --train 256 --val 0`")
        if not os.access(folder, os.R_OK | os.X_OK):
            raise HarnessError(f"--qat-data {folder} cannot be read; check its permissions or pass another folder")
        try:
            qat.find_training_set(folder)
        except HarnessError as exc:
            raise HarnessError(f"--qat-data {folder}: {exc}") from None


def build_setting(preset: Preset, target: str, op_names: set[str]):
    """The esp_ppq QuantizationSetting for `preset`; layer names must exist in the graph."""
    from esp_ppq import QuantizationSettingFactory
    from esp_ppq.api import get_target_platform

    missing = sorted(set(preset.int16_layers + preset.split_layers) - op_names)
    if missing:
        raise HarnessError(
            f"preset {preset.name!r} names layers that are not in the model: {missing}; "
            "list the model's layers with `python -m host analyse` and pass existing names"
        )
    setting = QuantizationSettingFactory.espdl_setting()
    setting.quantize_activation_setting.calib_algorithm = preset.calib_algorithm
    for op_name in preset.int16_layers:
        setting.dispatching_table.append(op_name, get_target_platform(target, 16))
    if preset.split_layers:
        setting.weight_split = True
        setting.weight_split_setting.method = "balance"
        setting.weight_split_setting.value_threshold = preset.split_threshold
        setting.weight_split_setting.interested_layers = list(preset.split_layers)
    if preset.bias_correct:
        setting.bias_correct = True
        setting.bias_correct_setting.interested_layers = []
        setting.bias_correct_setting.block_size = 4
        setting.bias_correct_setting.steps = 32
    if preset.tqt_steps:
        setting.tqt_optimization = True
        tqt = setting.tqt_optimization_setting
        tqt.lr = 1e-5
        tqt.steps = preset.tqt_steps
        tqt.block_size = 4
        tqt.is_scale_trainable = True
        tqt.gamma = 0.0
        tqt.int_lambda = 0.0
        tqt.collecting_device = "cpu"
    return setting
