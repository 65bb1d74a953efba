"""Read a labelled set: a folder of images with YOLO label files, or a COCO-format JSON.

YOLO format (ultralytics, and the fixture images): one `<stem>.txt` per image, next to it or in a
sibling `labels/` folder of an `images/` folder, one object per line: `class cx cy w h`, normalised to
the image size. COCO format: `--dataset annotations.json` with `images` (file_name relative to the
JSON's folder or its `images/` subfolder), `annotations` (bbox x, y, w, h in pixels) and `categories`;
category ids map to the model's class indices in ascending id order (COCO's 80 of 1..90 -> 0..79).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from host.errors import HarnessError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class GroundTruth:
    category: int
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Item:
    """One labelled image; `width`/`height` None until the image is read (YOLO labels need them)."""

    image: Path
    boxes: tuple[GroundTruth, ...]
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Problem:
    """Bad input found while reading the set: what, where, and what was done about it."""

    image: str
    kind: str  # "no_label", "malformed_line", "class_out_of_range", "unreadable_image", "missing_image"
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"image": self.image, "kind": self.kind, "detail": self.detail}


@dataclass
class LabelledSet:
    source: Path
    format: str  # "yolo" or "coco"
    items: list[Item]
    problems: list[Problem] = field(default_factory=list)
    num_classes: int = 80

    def digest(self) -> str:
        """sha256 of the image names and their ground truth: the set's identity for baselines."""
        h = hashlib.sha256()
        for item in sorted(self.items, key=lambda i: i.image.name):
            h.update(item.image.name.encode() + b"\0")
            for b in item.boxes:
                h.update(f"{b.category} {b.x1:.3f} {b.y1:.3f} {b.x2:.3f} {b.y2:.3f};".encode())
        return h.hexdigest()

    def problem_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.problems:
            counts[p.kind] = counts.get(p.kind, 0) + 1
        return counts


def load_dataset(path: str | Path, num_classes: int = 80, option: str = "--dataset") -> LabelledSet:
    """A labelled set from a folder (YOLO labels) or a COCO JSON file; a HarnessError if it holds nothing.
    `option` is how the caller's user named the set, for the messages."""
    source = Path(path)
    if source.is_file() and source.suffix.lower() == ".json":
        dataset = _load_coco(source, num_classes)
    elif source.is_dir():
        dataset = _load_yolo(source, num_classes)
    else:
        raise HarnessError(f"{option} {source} is neither a folder of images with YOLO label files nor a COCO "
                           ".json file; point it at one")
    if not dataset.items:
        raise HarnessError(f"{option} {source} holds no labelled image ({len(dataset.problems)} problem(s), e.g. "
                           f"{dataset.problems[0].detail if dataset.problems else 'no images'}); check the layout "
                           "(images with <stem>.txt labels, or a COCO .json)")
    return dataset


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def label_path(image: Path) -> Path:
    """Where an image's YOLO label file is: ultralytics' convention first (the last `images` folder of the
    path replaced by `labels`: images/val/x.png -> labels/val/x.txt) when that file exists, else the .txt
    beside the image (which may not exist either)."""
    parts = image.parts
    if "images" in parts[:-1]:
        i = len(parts) - 2 - parts[-2::-1].index("images")
        yolo = Path(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt")
        if yolo.is_file():
            return yolo
    return image.with_suffix(".txt")


def _load_yolo(folder: Path, num_classes: int) -> LabelledSet:
    images = _image_files(folder / "images") if (folder / "images").is_dir() else _image_files(folder)
    dataset = LabelledSet(folder, "yolo", [], num_classes=num_classes)
    for image in images:
        label = label_path(image)
        if not label.is_file():
            dataset.problems.append(Problem(image.name, "no_label", f"{image.name} has no label file "
                                            f"({image.stem}.txt): left out of the accuracy figures"))
            continue
        try:
            width, height = _image_size(image)
        except HarnessError as exc:
            dataset.problems.append(Problem(image.name, "unreadable_image", str(exc)))
            continue
        boxes = []
        for number, line in enumerate(label.read_text(errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            box = _yolo_line(line, width, height, num_classes)
            if isinstance(box, str):
                kind = "class_out_of_range" if box.startswith("class") else "malformed_line"
                dataset.problems.append(Problem(image.name, kind, f"{label.name}:{number}: {box}; line left out"))
            else:
                boxes.append(box)
        dataset.items.append(Item(image, tuple(boxes), width, height))
    return dataset


def _yolo_line(line: str, width: int, height: int, num_classes: int) -> GroundTruth | str:
    """One label line as a box, or a string saying what is wrong with it."""
    parts = line.split()
    if len(parts) != 5:
        return f"{len(parts)} fields in {line.strip()!r} (want: class cx cy w h)"
    try:
        cls = int(parts[0])
        cx, cy, w, h = (float(v) for v in parts[1:])
    except ValueError:
        return f"not numbers: {line.strip()!r}"
    if cls < 0 or cls >= num_classes:
        return f"class id {cls} is outside the model's {num_classes} classes"
    if not all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
        return f"coordinates {cx} {cy} {w} {h} are not normalised to 0..1"
    return GroundTruth(cls, (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)


def _image_size(image: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as handle:
            return handle.size
    except (OSError, UnidentifiedImageError) as exc:
        raise HarnessError(f"{image.name} cannot be read as an image ({exc})") from None


def _load_coco(path: Path, num_classes: int) -> LabelledSet:
    try:
        doc = json.loads(path.read_text())
        images, annotations, categories = doc["images"], doc.get("annotations", []), doc["categories"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"--dataset {path} is not a COCO annotation file ({type(exc).__name__}: {exc}); it needs "
                           "'images', 'annotations' and 'categories'") from None
    ids = sorted(int(c["id"]) for c in categories)
    to_class = {cid: i for i, cid in enumerate(ids)}
    root = path.parent
    dataset = LabelledSet(path, "coco", [], num_classes=num_classes)
    by_image: dict[int, list[GroundTruth]] = {}
    names = {int(im["id"]): im["file_name"] for im in images}
    for ann in annotations:
        name = names.get(int(ann.get("image_id", -1)), f"image id {ann.get('image_id')}")
        cls = to_class.get(int(ann.get("category_id", -1)))
        if cls is None or cls >= num_classes:
            dataset.problems.append(Problem(name, "class_out_of_range", f"annotation {ann.get('id')}: category "
                                            f"{ann.get('category_id')} maps to no class of the model's {num_classes}; "
                                            "left out"))
            continue
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError):
            dataset.problems.append(Problem(name, "malformed_line", f"annotation {ann.get('id')}: bbox "
                                            f"{ann.get('bbox')!r} is not [x, y, w, h]; left out"))
            continue
        if ann.get("iscrowd"):
            continue
        by_image.setdefault(int(ann["image_id"]), []).append(GroundTruth(cls, x, y, x + w, y + h))
    entries = {int(im["id"]): im for im in images}
    for image_id, name in sorted(names.items()):
        candidates = [root / name, root / "images" / name]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            dataset.problems.append(Problem(name, "missing_image", f"{name} is listed in {path.name} but not found "
                                            f"next to it or in images/"))
            continue
        entry = entries[image_id]
        dataset.items.append(Item(found, tuple(by_image.get(image_id, ())), entry.get("width"), entry.get("height")))
    return dataset
