"""Model sources: what the user passes is classified, identified by sha256, or refused with a fix."""

from pathlib import Path

import pytest

from host.errors import HarnessError
from host.model.source import resolve_model


def test_onnx_file_is_identified_by_content(tmp_path: Path) -> None:
    a = tmp_path / "a.onnx"
    a.write_bytes(b"one")
    b = tmp_path / "b.onnx"
    b.write_bytes(b"one")
    assert resolve_model(a).sha256 == resolve_model(b).sha256
    b.write_bytes(b"two")
    assert resolve_model(a).sha256 != resolve_model(b).sha256
    assert resolve_model(a).kind == "onnx" and resolve_model(a).needs_quantization


def test_espdl_skips_quantization(tmp_path: Path) -> None:
    f = tmp_path / "m.espdl"
    f.write_bytes(b"EDL2")
    source = resolve_model(f)
    assert source.kind == "espdl" and not source.needs_quantization and not source.needs_export


def test_architecture_name_resolves_without_a_file() -> None:
    source = resolve_model("yolo11n.yaml")
    assert source.kind == "yaml" and source.path is None and source.needs_export


@pytest.mark.parametrize(
    "spec, message",
    [
        ("missing/model.onnx", "does not exist"),
        ("model.tflite", "cannot tell what kind of model"),
    ],
)
def test_bad_model_argument_names_the_problem(spec: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        resolve_model(spec)


def test_empty_model_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(HarnessError, match="empty"):
        resolve_model(empty)


def test_offline_release_name_says_how_to_provide_the_file(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    import ultralytics.utils.downloads as downloads

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(downloads, "attempt_download_asset", offline)
    with pytest.raises(HarnessError, match="--model /path/to/yolo11n.pt"):
        resolve_model("yolo11n.pt")
