"""What the user handed us as a model: classify it, check it exists, and identify it by content.

Accepted: an ultralytics `.pt` (path, or a release name such as `yolo11n.pt` that ultralytics
downloads when online), an architecture `.yaml` (random weights: for tests only), an already
split-head `.onnx`, or a prequantized `.espdl` (quantization is then skipped).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from host.cache import sha256_file
from host.errors import HarnessError

KINDS = {".pt": "pt", ".yaml": "yaml", ".yml": "yaml", ".onnx": "onnx", ".espdl": "espdl"}

#: The project's own trained YOLO11n (80-class head), used when the user names no model.
FIXTURE_MODEL = Path(__file__).resolve().parents[2] / "fixtures" / "model" / "yolo11n_fixture.pt"


@dataclass(frozen=True)
class ModelSource:
    """A model the pipeline can start from, identified by the sha256 of its bytes."""

    kind: str  # "pt" | "yaml" | "onnx" | "espdl"
    path: Path | None  # None for an ultralytics architecture name resolved from the package
    name: str
    sha256: str

    @property
    def needs_export(self) -> bool:
        return self.kind in ("pt", "yaml")

    @property
    def needs_quantization(self) -> bool:
        return self.kind != "espdl"


def resolve_model(spec: str | Path | None) -> ModelSource:
    """Turn a user's model argument into a ModelSource, or raise a HarnessError saying how to fix it."""
    if spec is None or str(spec) in ("", "fixture"):
        if not FIXTURE_MODEL.is_file():
            raise HarnessError(
                f"the bundled fixture model {FIXTURE_MODEL} is missing; restore it with "
                "`git checkout fixtures/model` or pass a model explicitly (--model yolo11n.pt)"
            )
        spec = FIXTURE_MODEL
    text = str(spec)
    suffix = Path(text).suffix.lower()
    if suffix not in KINDS:
        raise HarnessError(
            f"cannot tell what kind of model {text!r} is from its extension; give a .pt (ultralytics "
            "weights), .yaml (architecture), .onnx (split-head export) or .espdl (quantized) file"
        )
    kind = KINDS[suffix]
    path = Path(text).expanduser()
    if path.is_file():
        if path.stat().st_size == 0:
            raise HarnessError(f"model file {path} is empty; re-export or re-download it")
        return ModelSource(kind, path.resolve(), path.name, sha256_file(path))
    if kind == "yaml" and Path(text).name == text:
        # An architecture name such as "yolo11n.yaml" is resolved inside the ultralytics package.
        return ModelSource(kind, None, text, hashlib.sha256(f"ultralytics-yaml:{text}".encode()).hexdigest())
    if kind == "pt" and Path(text).name == text:
        return _download_release_weights(text)
    raise HarnessError(f"model file {path} does not exist; check the path (relative to {Path.cwd()})")


def _download_release_weights(name: str) -> ModelSource:
    """Let ultralytics fetch release weights such as yolo11n.pt; offline, say how to supply them."""
    try:
        from ultralytics.utils.downloads import attempt_download_asset

        local = Path(attempt_download_asset(name))
    except Exception as exc:  # ultralytics raises assorted network errors
        local = None
        reason = f"{type(exc).__name__}: {exc}"
    else:
        reason = "the download produced no file"
    if local is None or not local.is_file():
        raise HarnessError(
            f"{name} is not a local file and could not be downloaded ({reason}). Offline, download it "
            f"elsewhere from the ultralytics assets release page and pass its path: --model /path/to/{name}"
        )
    return ModelSource("pt", local.resolve(), local.name, sha256_file(local))
