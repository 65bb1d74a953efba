"""What the user handed us as a model: classify it, check it exists, and identify it by content.

Accepted: an ultralytics `.pt` (path, or a release name such as `yolo11n.pt` that ultralytics
downloads when online), an architecture `.yaml` (random weights: for tests only), an already
split-head `.onnx`, or a prequantized `.espdl` (quantization is then skipped).
"""

from __future__ import annotations

import hashlib
import zipfile
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


def resolve_model(spec: str | Path | None, download: bool = True) -> ModelSource:
    """Turn a user's model argument into a ModelSource, or raise a HarnessError saying how to fix it.

    `download=False` (configure-time checks) leaves a release name that is not a local file unresolved
    (path None) instead of fetching it."""
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
        if not download:
            return ModelSource(kind, None, text, "")
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


def check_readable(source: ModelSource, imgsz: int, target: str | None = None) -> None:
    """Refuse, from the file's content and cheaply, a model the pipeline could not read: a text file named
    .pt, a truncated checkpoint, an ONNX without the split head, a corrupt or non-detector .espdl."""
    if source.path is None:
        return  # an ultralytics name: resolved (downloaded) when the session starts
    path = source.path
    try:
        _check_content(source.kind, path, imgsz, target)
    except OSError as exc:  # a model file we may not read (permissions, a folder named .pt, ...)
        raise HarnessError(f"cannot read model file {path} ({exc.strerror or exc}); check the path and its "
                           "permissions") from None


def _check_content(kind: str, path: Path, imgsz: int, target: str | None) -> None:
    if kind == "pt":
        with open(path, "rb") as handle:
            head = handle.read(2)
        legacy_pickle = len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5
        if not (zipfile.is_zipfile(path) or legacy_pickle):
            raise HarnessError(f"{path} is not a PyTorch checkpoint (not a zip archive or pickle: truncated, or "
                               "not a .pt at all); pass the ultralytics .pt file itself")
    elif kind == "yaml":
        import yaml

        try:
            doc = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise HarnessError(f"{path} is not readable YAML ({exc}); pass an ultralytics model .yaml") from None
        if not isinstance(doc, dict) or "backbone" not in doc or "head" not in doc:
            raise HarnessError(f"{path} is not an ultralytics model .yaml (no backbone/head); pass yolo11n.yaml")
    elif kind == "onnx":
        from host.model.export import check_split_head_onnx

        check_split_head_onnx(path, imgsz)
    elif kind == "espdl":
        check_espdl_detector(path, imgsz, target)


def check_espdl_detector(path: Path, imgsz: int, target: str | None = None):
    """Load a .espdl and check it is a split-head YOLO11 detector for `imgsz` (and `target`, from its
    identity: written by the harness, or inferred); returns the EspdlModel."""
    from host.chip.detection import OUTPUT_NAMES
    from host.espdl import load as load_espdl
    from host.model.identity import check_identity, identify

    try:
        model = load_espdl(path)
    except HarnessError as exc:  # container and format errors say what is wrong, not which file: add it
        if str(path) not in str(exc):
            exc.args = (f"{path}: {exc}",)
        raise
    inputs = model.inputs
    if len(inputs) != 1 or inputs[0].shape is None or len(inputs[0].shape) != 4:
        raise HarnessError(f"{path} has {len(inputs)} inputs; a YOLO11n .espdl has one NHWC image input ('images')")
    if target is not None:
        check_identity(identify(model), path, target, imgsz)
    shape = inputs[0].shape
    if shape[1] != imgsz or shape[2] != imgsz:
        raise HarnessError(f"{path} takes {shape[1]}x{shape[2]} input, not {imgsz}; pass --imgsz {shape[1]}")
    outputs = sorted(o.name for o in model.outputs)
    if outputs != sorted(OUTPUT_NAMES):
        raise HarnessError(f"{path} has outputs {outputs}: not a YOLO11n detector for ESP-DL's yolo11 postprocess, "
                           f"which needs {list(OUTPUT_NAMES)}")
    return model
