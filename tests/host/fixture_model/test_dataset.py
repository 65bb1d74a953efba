"""The synthetic data-set generator is deterministic, its labels are valid, and the committed fixtures match it."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import Image

from tools.dataset.build import (CALIB_COUNT, CALIB_SEED, FIXTURE_CASES, FIXTURE_SEED, build_yolo_split,
                                 calib_image, fixture_image)
from tools.dataset.classes import CLASS_NAMES, KIND_TO_CLASS
from tools.dataset.files import sha256_file, sha256_pixels, write_png, yolo_lines
from tools.dataset.photos import real_photos
from tools.dataset.render import Shape, coverage, subsample_box

REPO = Path(__file__).resolve().parents[3]
IMAGES = REPO / "fixtures" / "images"
CALIB = REPO / "fixtures" / "calib"
SAMPLE = (0, 8, 10, 11)  # portrait, small objects, empty, border cut


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((IMAGES / "manifest.json").read_text())


@pytest.fixture(scope="module")
def same_encoder(manifest: dict) -> bool:
    """PNG bytes depend on Pillow's zlib; pixel hashes do not. Byte checks need the recorded encoder."""
    enc = manifest["encoder"]
    return enc["pillow"] == PIL.__version__ and enc["zlib"] == zlib.ZLIB_RUNTIME_VERSION


@pytest.mark.parametrize("index", SAMPLE)
def test_regenerated_fixture_matches_committed(index: int, manifest: dict, same_encoder: bool, tmp_path: Path) -> None:
    case, img, boxes = fixture_image(FIXTURE_SEED, index)
    entry = manifest["images"][index]
    assert entry["file"] == f"{case.name}.png"
    assert sha256_pixels(img) == entry["pixels_sha256"]
    assert yolo_lines(boxes, case.width, case.height) == (IMAGES / f"{case.name}.txt").read_text()
    if not same_encoder:
        pytest.skip(f"PNG bytes not compared: manifest was written with Pillow {manifest['encoder']['pillow']} / "
                    f"zlib {manifest['encoder']['zlib']}, this is {PIL.__version__} / {zlib.ZLIB_RUNTIME_VERSION}")
    write_png(tmp_path / "x.png", img)
    assert sha256_file(tmp_path / "x.png") == entry["sha256"] == sha256_file(IMAGES / entry["file"])


def test_regenerated_calib_matches_committed() -> None:
    calib = json.loads((CALIB / "manifest.json").read_text())
    assert calib["seed"] == CALIB_SEED and len(calib["images"]) == CALIB_COUNT
    for index in (0, CALIB_COUNT - 1):
        assert sha256_pixels(calib_image(CALIB_SEED, index)) == calib["images"][index]["pixels_sha256"]


def test_different_seed_gives_different_images() -> None:
    _, a, _ = fixture_image(FIXTURE_SEED, 0)
    _, b, _ = fixture_image(FIXTURE_SEED + 1, 0)
    assert a.shape == b.shape and sha256_pixels(a) != sha256_pixels(b)
    assert sha256_pixels(calib_image(CALIB_SEED, 0)) != sha256_pixels(calib_image(CALIB_SEED + 1, 0))


def test_training_split_is_byte_reproducible(tmp_path: Path) -> None:
    for run in ("a", "b", "c"):
        build_yolo_split(1 if run != "c" else 2, tmp_path / run, "train", 2)
    for name in ("images/train/train_00000.png", "images/train/train_00001.png", "labels/train/train_00001.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a/images/train/train_00000.png").read_bytes() != (tmp_path / "c/images/train/train_00000.png").read_bytes()


def test_manifest_describes_every_image(manifest: dict) -> None:
    files = sorted(p.name for p in IMAGES.glob("*.png"))
    assert sorted(e["file"] for e in manifest["images"]) == files
    assert len(files) == len(FIXTURE_CASES) >= 12
    shapes = set()
    for e in manifest["images"]:
        with Image.open(IMAGES / e["file"]) as im:
            assert im.size == (e["width"], e["height"]) and im.mode == "RGB"
        shapes.add("landscape" if e["width"] > e["height"] else "portrait" if e["width"] < e["height"] else "square")
    assert shapes == {"landscape", "portrait", "square"}
    assert any(e["objects"] == 0 for e in manifest["images"])
    assert sum(p.stat().st_size for p in IMAGES.glob("*.png")) < 2_000_000
    assert sum(p.stat().st_size for p in CALIB.glob("*.png")) < 3_000_000
    assert manifest["class_names"] == CLASS_NAMES


def test_labels_are_valid_and_agree_with_pixel_boxes(manifest: dict) -> None:
    labels = json.loads((IMAGES / "labels.json").read_text())
    valid = set(KIND_TO_CLASS.values())
    for e in manifest["images"]:
        rows = [ln.split() for ln in (IMAGES / e["file"].replace(".png", ".txt")).read_text().splitlines()]
        boxes = labels[e["file"]]["boxes"]
        assert len(rows) == len(boxes) == e["objects"]
        for row, box in zip(rows, boxes):
            cls, cx, cy, w, h = int(row[0]), *map(float, row[1:])
            assert cls in valid and CLASS_NAMES[cls] == box["kind"] and cls == box["class"]
            assert 0 < w <= 1 and 0 < h <= 1
            assert -1e-6 <= cx - w / 2 and cx + w / 2 <= 1 + 1e-6 and -1e-6 <= cy - h / 2 and cy + h / 2 <= 1 + 1e-6
            x0, y0, x1, y1 = box["xyxy"]
            assert abs((x0 + x1) / 2 / e["width"] - cx) < 1e-4 and abs((y1 - y0) / e["height"] - h) < 1e-4


def test_class_names_keep_the_80_class_head() -> None:
    assert len(CLASS_NAMES) == 80 and {0, 79} <= set(KIND_TO_CLASS.values())
    assert all(CLASS_NAMES[i].startswith("unused_") for i in range(80) if i not in KIND_TO_CLASS.values())


def test_label_box_matches_the_drawn_geometry() -> None:
    """An axis-aligned block of half-size 10 x 6 centred at (50.5, 30.5) spans exactly [40.5, 60.5] x [24.5, 36.5]."""
    shape = Shape("block", 50.5, 30.5, 10.0, 6.0, 0.0, 0.2, 0.0, (255.0, 0.0, 0.0), 0.0)
    cov, window, mask = coverage(shape)
    assert subsample_box(mask, window) == (40.5, 24.5, 60.5, 36.5)
    assert np.isclose(cov.sum(), 20.0 * 12.0)


def test_real_photos_are_found_in_the_installed_package() -> None:
    paths = real_photos()
    assert [p.name for p in paths] == ["bus.jpg", "zidane.jpg"]
    for p in paths:
        with Image.open(p) as im:
            assert min(im.size) > 300
