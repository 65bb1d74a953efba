"""What an .espdl artifact is for: chip, input size, recipe - read from the file, or inferred and said so.

The harness writes its identity into every .espdl it makes (the file's metadata: `hil.target`,
`hil.imgsz`, `hil.preset`, `hil.esp_ppq`, `hil.calib_sha256`, `hil.espdl_release`). A file made
elsewhere (Espressif's published models, a QAT export) carries none of that: its input size comes from
its input shape, and its chip from how its conv weights are quantized - esp-ppq gives ESP32-P4 conv
filters one exponent per output channel and ESP32-S3 filters one per layer (see
shared reference esp-dl-ops.md, "Numbers and rounding"). A session whose `--target` or `--imgsz`
disagrees with the file is refused before anything is built, flashed or started.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host.errors import HarnessError

PREFIX = "hil."
PER_CHANNEL_TARGET = "esp32p4"
PER_LAYER_TARGET = "esp32s3"


@dataclass(frozen=True)
class ArtifactIdentity:
    target: str | None
    target_source: str  # "metadata", "inferred from conv weight exponents", or why it is unknown
    imgsz: int | None
    imgsz_source: str  # "metadata" or "inferred from the input shape"
    preset: str | None = None
    esp_ppq: str | None = None
    calib_sha256: str | None = None

    def describe(self) -> str:
        return (f"target {self.target or 'unknown'} ({self.target_source}), input {self.imgsz} "
                f"({self.imgsz_source}), preset {self.preset or 'unknown'}")

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def identity_metadata(target: str, imgsz: int, preset: str, esp_ppq: str, calib_sha256: str,
                      espdl_release: str) -> dict[str, str]:
    """The metadata the harness writes into the .espdl it makes."""
    values = {"target": target, "imgsz": str(imgsz), "preset": preset, "esp_ppq": esp_ppq,
              "calib_sha256": calib_sha256, "espdl_release": espdl_release}
    return {PREFIX + k: v for k, v in values.items()}


def infer_target(model) -> tuple[str | None, str]:
    """The chip a foreign .espdl was quantized for, from its conv filters' exponent counts."""
    per_channel = per_layer = 0
    for node in model.nodes:
        if node.op_type != "Conv" or len(node.inputs) < 2:
            continue
        weight = model.initializers.get(node.inputs[1])
        if weight is None or len(weight.dims) != 4:
            continue
        out_channels = weight.dims[2] if int(node.attributes.get("group", 1)) != 1 else weight.dims[3]
        if out_channels < 2:
            continue
        count = len(weight.exponents or ())
        if count == out_channels:
            per_channel += 1
        elif count == 1:
            per_layer += 1
    if per_channel and not per_layer:
        return PER_CHANNEL_TARGET, "inferred from conv weight exponents (one per output channel: ESP32-P4)"
    if per_layer and not per_channel:
        return PER_LAYER_TARGET, "inferred from conv weight exponents (one per layer: ESP32-S3)"
    return None, (f"unknown: {per_channel} conv(s) with per-channel and {per_layer} with per-layer weight "
                  "exponents, so the chip cannot be inferred")


def identify(model) -> ArtifactIdentity:
    """The identity of a loaded EspdlModel: its metadata where the harness wrote it, else inferred."""
    meta = {k[len(PREFIX):]: v for k, v in model.metadata.items() if k.startswith(PREFIX)}
    shape = model.inputs[0].shape if model.inputs and model.inputs[0].shape else None
    imgsz = int(shape[1]) if shape is not None and len(shape) == 4 else None
    if "imgsz" in meta and meta["imgsz"].isdigit():
        imgsz, imgsz_source = int(meta["imgsz"]), "metadata"
    else:
        imgsz_source = "inferred from the input shape"
    if meta.get("target"):
        target, target_source = meta["target"], "metadata"
    else:
        target, target_source = infer_target(model)
    return ArtifactIdentity(target, target_source, imgsz, imgsz_source, meta.get("preset"), meta.get("esp_ppq"),
                            meta.get("calib_sha256"))


def check_identity(identity: ArtifactIdentity, path: Path, target: str, imgsz: int) -> None:
    """Refuse a session whose target or input size disagrees with the file, in one line with the fix."""
    if identity.target is not None and identity.target != target:
        how = "its metadata says so" if identity.target_source == "metadata" else identity.target_source
        raise HarnessError(f"{path.name} is quantized for {identity.target} ({how}), the session targets {target}: "
                           f"run with --target {identity.target}, or quantize the model for {target}")
    if identity.imgsz is not None and identity.imgsz != imgsz:
        raise HarnessError(f"{path.name} takes {identity.imgsz}x{identity.imgsz} input ({identity.imgsz_source}), "
                           f"the session asks --imgsz {imgsz}: pass --imgsz {identity.imgsz}")
