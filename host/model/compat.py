"""The export adjustments that make esp-ppq 1.3.12 write what the firmware's esp-dl reads (host.chip.releases).

esp-ppq 1.3.10 and later mark activation x activation MatMuls `input1_layout = "native_kn"` and
feed the right operand row-major; esp-dl up to 3.3.9 reads no such attribute and treats the
operand as packed like a conv filter, so such a model silently computes wrong attention outputs.
esp-ppq 1.3.12 can also fuse attention into an `Attention` node that esp-dl 3.3.9 has no kernel
for. The harness pins esp-ppq 1.3.12 and the firmware's esp-dl 3.3.x together and, for an esp-dl
that lacks a feature, makes the exporter take its older path (packed MatMul operand built by a
Transpose/Reshape subgraph; attention left unfused). The emulator checks the result in
esp-dl-3.3.9 mode: the exported test values must come out exactly.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from host.chip.releases import espdl_features
from host.errors import HarnessError

def installed_esp_ppq_version() -> str:
    from importlib.metadata import version

    return version("esp-ppq")


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def esp_ppq_emits_native_kn(esp_ppq_version: str) -> bool:
    return _version_tuple(esp_ppq_version) >= (1, 3, 10)


def export_adjustments(espdl_version: str | None = None) -> dict[str, bool]:
    """What the export must change so the model runs right on `espdl_version` (cache-key material)."""
    features = espdl_features(espdl_version)
    return {
        "force_packed_matmul": esp_ppq_emits_native_kn(installed_esp_ppq_version())
        and not features.reads_input1_layout,
        "attention_fusion": features.has_attention_op,
    }


def apply_to_setting(setting, adjustments: dict[str, bool]) -> None:
    """Settings-level adjustments (attention fusion) on an esp_ppq QuantizationSetting."""
    setting.espdl_attention_fusion = adjustments["attention_fusion"]


@contextlib.contextmanager
def exporter_adjusted(adjustments: dict[str, bool]) -> Iterator[None]:
    """While active, esp-ppq's MatMul export pattern packs activation operands like esp-ppq <= 1.3.9.

    esp-ppq 1.3.12 chooses `native_kn` when the MatMul's fused activation is Linear or Relu; the
    packed branch below that check is the layout esp-dl <= 3.3.9 reads. The op's activation is
    hidden from that one check and restored straight after, so nothing else in the export changes.
    """
    if not adjustments["force_packed_matmul"]:
        yield
        return
    from esp_ppq.IR.quantize import QuantableOperation
    from esp_ppq.parser.espdl.export_patterns import InsertPreNodeOfMatMulPattern

    original = InsertPreNodeOfMatMulPattern.export
    missing = object()

    def export_packed(self, op, graph, **kwargs):
        dynamic = op.type == "MatMul" and isinstance(op, QuantableOperation) and not op.inputs[1].is_parameter
        if not dynamic:
            return original(self, op, graph, **kwargs)
        saved = op.attributes.get("activation", missing)
        op.attributes["activation"] = "__packed_for_espdl_without_input1_layout__"
        try:
            result = original(self, op, graph, **kwargs)
        finally:
            if saved is missing:
                op.attributes.pop("activation", None)
            else:
                op.attributes["activation"] = saved
        if op.attributes.get("input1_layout") != "packed":
            raise HarnessError(
                f"esp-ppq {installed_esp_ppq_version()} did not pack the operand of MatMul {op.name}; "
                "the harness's export adjustment does not fit this esp-ppq version (see host/model/compat.py)"
            )
        return result

    InsertPreNodeOfMatMulPattern.export = export_packed
    try:
        yield
    finally:
        InsertPreNodeOfMatMulPattern.export = original
