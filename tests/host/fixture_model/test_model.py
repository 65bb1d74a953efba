"""The committed fixture model: matches its metadata, loads offline, is exactly the 80-class YOLO11n graph, detects."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest

from tools.dataset.classes import CLASS_NAMES

REPO = Path(__file__).resolve().parents[3]
MODEL_DIR = REPO / "fixtures" / "model"
IMAGES = REPO / "fixtures" / "images"


@pytest.fixture(scope="module")
def metadata() -> dict:
    return json.loads((MODEL_DIR / "metadata.json").read_text())


@pytest.fixture(scope="module")
def weights(metadata: dict) -> Path:
    return MODEL_DIR / metadata["weights"]


@pytest.fixture(scope="module")
def model(weights: Path):
    """The fixture model loaded with every outbound connection refused: loading must not need the network."""
    from ultralytics import YOLO

    def refuse(self: socket.socket, address: object) -> None:
        raise AssertionError(f"the fixture model tried to reach the network: {address!r}")

    mp = pytest.MonkeyPatch()
    mp.setenv("YOLO_OFFLINE", "1")
    mp.setattr(socket.socket, "connect", refuse)
    try:
        yield YOLO(str(weights))
    finally:
        mp.undo()


def test_metadata_sha256_matches_weights(metadata: dict, weights: Path) -> None:
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == metadata["sha256"]
    assert metadata["class_names"] == CLASS_NAMES
    assert weights.stat().st_size < 8_000_000  # optimizer state stripped
    assert set(metadata["evaluation"]["float"]) == {"320", "640"}  # eval_fixture ran on these very weights


def test_model_has_the_coco_graph(model) -> None:
    from ultralytics import YOLO

    assert len(model.names) == 80 and [model.names[i] for i in range(80)] == CLASS_NAMES
    assert model.model.yaml["nc"] == 80
    reference = YOLO("yolo11n.yaml").model.state_dict()
    trained = model.model.state_dict()
    assert {k: tuple(v.shape) for k, v in trained.items()} == {k: tuple(v.shape) for k, v in reference.items()}


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("name", ["square_320x320.png", "landscape_640x427.png", "wide_480x203.png"])
def test_model_finds_the_ground_truth(model, name: str) -> None:
    """Real detections, not a constant output: every labelled object found with its class at IoU >= 0.5."""
    gt = json.loads((IMAGES / "labels.json").read_text())[name]["boxes"]
    res = model.predict(str(IMAGES / name), imgsz=320, conf=0.25, rect=False, device="cpu", verbose=False)[0]
    dets = list(zip(res.boxes.xyxy.tolist(), res.boxes.cls.tolist()))
    assert gt
    for box in gt:
        assert any(int(c) == box["class"] and _iou(xyxy, box["xyxy"]) >= 0.5 for xyxy, c in dets), box
