"""Where label files are found: ultralytics' images/ -> labels/ layout, or beside the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from host.dataset import load_dataset
from host.dataset.labels import label_path


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(path)
    return path


def _label(path: Path, text: str = "0 0.5 0.5 0.2 0.2\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_ultralytics_layout_split_folder_is_a_dataset(tmp_path: Path) -> None:
    for stem in ("a", "b"):
        _image(tmp_path / "images" / "val" / f"{stem}.png")
        _label(tmp_path / "labels" / "val" / f"{stem}.txt")
    _image(tmp_path / "images" / "val" / "c.png")  # no label anywhere
    dataset = load_dataset(tmp_path / "images" / "val")
    assert [item.image.name for item in dataset.items] == ["a.png", "b.png"]
    assert dataset.problem_counts() == {"no_label": 1}
    assert len(dataset.items[0].boxes) == 1


def test_label_path_prefers_the_labels_tree_and_falls_back_beside(tmp_path: Path) -> None:
    image = _image(tmp_path / "images" / "train" / "x.png")
    assert label_path(image) == image.with_suffix(".txt")  # neither exists: the beside path, to name it
    beside = _label(image.with_suffix(".txt"))
    assert label_path(image) == beside
    tree = _label(tmp_path / "labels" / "train" / "x.txt")
    assert label_path(image) == tree


def test_only_the_last_images_folder_is_mapped(tmp_path: Path) -> None:
    image = _image(tmp_path / "images" / "set" / "images" / "y.png")
    label = _label(tmp_path / "images" / "set" / "labels" / "y.txt")
    assert label_path(image) == label
    assert label_path(tmp_path / "images.png") == tmp_path / "images.txt"  # a file named images is no folder
