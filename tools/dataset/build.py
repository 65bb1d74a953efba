"""Building data sets: the training/validation split for the fixture model, and the committed fixtures.

Each image has its own random stream, derived from (seed, split, index), so any single image can be
regenerated without the others - the tests rebuild a sample and compare hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.dataset.classes import CLASS_NAMES
from tools.dataset.files import pixel_boxes, sha256_file, sha256_pixels, write_json, write_png, yolo_lines
from tools.dataset.scene import Box, SceneSpec, render_scene

SPLIT_CODES = {"train": 1, "val": 2, "fixtures": 3, "calib": 4}


def rng_for(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, SPLIT_CODES[split], index])))


def training_spec(rng: np.random.Generator) -> SceneSpec:
    """A random scene recipe for training: any size 200-480 px per side, 0-8 objects, wide size range."""
    width, height = int(rng.integers(200, 481)), int(rng.integers(200, 481))
    empty = rng.uniform() < 0.03
    return SceneSpec(width, height, n_min=0 if empty else 1, n_max=0 if empty else 8, size_min=0.07,
                     size_max=0.7, border_prob=0.2, noise_amp=int(rng.integers(0, 7)))


def build_yolo_split(seed: int, out: Path, split: str, count: int) -> None:
    """Write images/<split>/*.png and labels/<split>/*.txt in the layout ultralytics expects."""
    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rng = rng_for(seed, split, i)
        spec = training_spec(rng)
        img, boxes = render_scene(rng, spec)
        name = f"{split}_{i:05d}"
        write_png(img_dir / f"{name}.png", img)
        (lbl_dir / f"{name}.txt").write_text(yolo_lines(boxes, spec.width, spec.height))


def write_data_yaml(out: Path) -> Path:
    """The ultralytics data file: absolute path, train/val folders, all 80 names."""
    lines = [f"path: {out.resolve()}", "train: images/train", "val: images/val", "names:"]
    lines += [f"  {i}: {name}" for i, name in enumerate(CLASS_NAMES)]
    path = out / "data.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def build_training_set(seed: int, out: Path, n_train: int, n_val: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    build_yolo_split(seed, out, "train", n_train)
    build_yolo_split(seed, out, "val", n_val)
    return write_data_yaml(out)


@dataclass(frozen=True)
class FixtureCase:
    """One committed test image: its name, size, recipe and what it is there to cover."""

    name: str
    width: int
    height: int
    covers: str
    n_min: int = 2
    n_max: int = 4
    size_min: float = 0.2
    size_max: float = 0.5
    border_prob: float = 0.0


# Sizes chosen so letterboxing to 320 and 640 gives odd, unequal padding in either direction.
FIXTURE_CASES: tuple[FixtureCase, ...] = (
    FixtureCase("portrait_405x540", 405, 540, "portrait, pad left/right"),
    FixtureCase("landscape_640x427", 640, 427, "landscape at the model's width, odd pad top/bottom"),
    FixtureCase("landscape_333x250", 333, 250, "small landscape, upscaled by the letterbox"),
    FixtureCase("portrait_250x333", 250, 333, "small portrait, upscaled by the letterbox"),
    FixtureCase("square_301x301", 301, 301, "odd-sized square, no padding"),
    FixtureCase("square_320x320", 320, 320, "exactly the 320 input, identity resize at 320"),
    FixtureCase("wide_480x203", 480, 203, "very wide, large top/bottom padding"),
    FixtureCase("tall_211x470", 211, 470, "very tall, large left/right padding"),
    FixtureCase("small_objects_451x337", 451, 337, "many small objects", n_min=6, n_max=8, size_min=0.09,
                size_max=0.14),
    FixtureCase("crowded_479x359", 479, 359, "crowded scene with overlaps", n_min=10, n_max=12, size_min=0.14,
                size_max=0.3),
    FixtureCase("empty_347x263", 347, 263, "no objects: any detection is a false positive", n_min=0, n_max=0),
    FixtureCase("border_cut_393x295", 393, 295, "objects cut by the image border", n_min=3, n_max=4,
                size_min=0.25, size_max=0.45, border_prob=1.0),
    FixtureCase("border_cut_257x389", 257, 389, "portrait, objects cut by the border", n_min=2, n_max=3,
                size_min=0.3, size_max=0.5, border_prob=1.0),
    FixtureCase("large_single_365x299", 365, 299, "one large object", n_min=1, n_max=1, size_min=0.6,
                size_max=0.75),
    FixtureCase("mixed_427x640", 427, 640, "portrait at the model's height, mixed sizes", n_min=4, n_max=6,
                size_min=0.12, size_max=0.4, border_prob=0.2),
    FixtureCase("mixed_360x270", 360, 270, "mixed sizes, some cut by the border", n_min=4, n_max=6,
                size_min=0.12, size_max=0.4, border_prob=0.3),
)

FIXTURE_SEED = 20260311
CALIB_SEED = 7040
CALIB_COUNT = 32


def fixture_image(seed: int, index: int) -> tuple[FixtureCase, np.ndarray, list[Box]]:
    case = FIXTURE_CASES[index]
    spec = SceneSpec(case.width, case.height, n_min=case.n_min, n_max=case.n_max, size_min=case.size_min,
                     size_max=case.size_max, border_prob=case.border_prob, noise_amp=0)
    img, boxes = render_scene(rng_for(seed, "fixtures", index), spec)
    return case, img, boxes


def calib_image(seed: int, index: int) -> np.ndarray:
    rng = rng_for(seed, "calib", index)
    width, height = int(rng.integers(200, 321)), int(rng.integers(200, 321))
    spec = SceneSpec(width, height, n_min=1, n_max=6, size_min=0.1, size_max=0.6, border_prob=0.2, noise_amp=0)
    img, _ = render_scene(rng, spec)
    return img


def _versions() -> dict[str, str]:
    import zlib

    import PIL

    return {"numpy": np.__version__, "pillow": PIL.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION}


def build_fixtures(root: Path, seed: int = FIXTURE_SEED, calib_seed: int = CALIB_SEED) -> None:
    """Write <root>/images (test images, YOLO txt, pixel-box JSON, manifest) and <root>/calib."""
    img_dir, calib_dir = root / "images", root / "calib"
    img_dir.mkdir(parents=True, exist_ok=True)
    calib_dir.mkdir(parents=True, exist_ok=True)
    entries, gt = [], {}
    for i in range(len(FIXTURE_CASES)):
        case, img, boxes = fixture_image(seed, i)
        png = img_dir / f"{case.name}.png"
        write_png(png, img)
        (img_dir / f"{case.name}.txt").write_text(yolo_lines(boxes, case.width, case.height))
        gt[png.name] = {"width": case.width, "height": case.height, "boxes": pixel_boxes(boxes)}
        entries.append({"file": png.name, "index": i, "width": case.width, "height": case.height,
                        "objects": len(boxes), "covers": case.covers, "sha256": sha256_file(png),
                        "pixels_sha256": sha256_pixels(img)})
    write_json(img_dir / "labels.json", gt)
    write_json(img_dir / "manifest.json", {"generator": "python -m tools.dataset fixtures", "seed": seed,
                                           "class_names": CLASS_NAMES, "encoder": _versions(),
                                           "images": entries})
    calib_entries = []
    for i in range(CALIB_COUNT):
        img = calib_image(calib_seed, i)
        png = calib_dir / f"calib_{i:02d}.png"
        write_png(png, img)
        calib_entries.append({"file": png.name, "index": i, "width": int(img.shape[1]), "height": int(img.shape[0]),
                              "sha256": sha256_file(png), "pixels_sha256": sha256_pixels(img)})
    write_json(calib_dir / "manifest.json", {"generator": "python -m tools.dataset fixtures", "seed": calib_seed,
                                             "encoder": _versions(), "images": calib_entries})
