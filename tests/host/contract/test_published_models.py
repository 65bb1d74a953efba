"""Espressif's published YOLO11n .espdl files (esp-dl `models/coco_detect/models/{p4,s3}/*.espdl`), as a user
brings them: identified (chip from the weight layout, size from the input shape), refused for the other chip
and size, and run through the ESP-DL-exact pipeline on the emulator.

The files are not part of this repository (they are Espressif's). Point `HIL_PUBLISHED_MODELS` at that
`models` folder of an esp-dl checkout to run these tests; without it they skip, saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from host.chip.detection import OUTPUT_NAMES
from host.chip.pipeline import DetectPipeline
from host.errors import HarnessError
from host.espdl.engine import EmulatorEngine
from host.espdl.model import load
from host.hil.options import DEFAULT_IMAGES, list_images
from host.model.identity import identify
from host.model.source import check_espdl_detector

CHIPS = {"p4": "esp32p4", "s3": "esp32s3"}
OTHER = {"esp32p4": "esp32s3", "esp32s3": "esp32p4"}


def _published() -> list[Path]:
    root = os.environ.get("HIL_PUBLISHED_MODELS")
    if not root:
        return []
    return sorted(p for chip in CHIPS for p in (Path(root) / chip).glob("*yolo11n*.espdl"))


def _params():
    files = _published()
    if not files:
        why = ("HIL_PUBLISHED_MODELS is not set" if not os.environ.get("HIL_PUBLISHED_MODELS")
               else f"no p4/ or s3/ *yolo11n*.espdl under {os.environ['HIL_PUBLISHED_MODELS']}")
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"{why}: point it at esp-dl's models/coco_detect/models to test Espressif's published models"))]
    return [pytest.param(p, id=f"{p.parent.name}-{p.stem}") for p in files]


def _size(path: Path) -> int:
    return 320 if "_320_" in path.name else 640


@pytest.mark.parametrize("path", _params())
def test_published_model_is_identified_and_refused_elsewhere(path: Path) -> None:
    target = CHIPS[path.parent.name]
    identity = identify(load(path))
    assert identity.target == target and identity.imgsz == _size(path)
    assert "inferred" in identity.target_source  # Espressif's files carry no harness metadata
    check_espdl_detector(path, _size(path), target)
    with pytest.raises(HarnessError, match=f"{target}.*{OTHER[target]}|{OTHER[target]}.*{target}"):
        check_espdl_detector(path, _size(path), OTHER[target])
    with pytest.raises(HarnessError, match="--imgsz"):
        check_espdl_detector(path, 960, target)


@pytest.mark.parametrize("path", _params())
def test_published_model_runs_in_the_esp_dl_exact_pipeline(path: Path) -> None:
    target = CHIPS[path.parent.name]
    model = load(path)
    assert {o.name for o in model.outputs} == set(OUTPUT_NAMES)
    pipeline = DetectPipeline(EmulatorEngine(model, target), target)
    image = list_images(DEFAULT_IMAGES)[0]
    result = pipeline.detect(image)
    assert result.raw.tensors.keys() >= set(OUTPUT_NAMES)
    for name in OUTPUT_NAMES:  # a COCO model computes something on any image: not all-constant outputs
        assert result.raw.tensors[name].std() > 0, name
