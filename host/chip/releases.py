"""What each esp-dl release reads and runs, as far as exported models depend on it: one table.

esp-ppq 1.3.10 and later mark activation x activation MatMuls `input1_layout = "native_kn"` and feed
the right operand row-major; esp-dl up to 3.3.9 reads no such attribute and treats the operand as a
packed conv filter, so such a model silently computes wrong attention outputs. esp-ppq 1.3.12 can
also fuse attention into an `Attention` node that esp-dl 3.3.9 has no kernel for. The export side
(host.model.compat), `espdl check` and the emulator all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass

from host.errors import HarnessError

#: The esp-dl release the firmware is pinned to (firmware/main/idf_component.yml) and the
#: emulator emulates by default.
FIRMWARE_ESPDL_VERSION = "3.3.9"


@dataclass(frozen=True)
class EspdlFeatures:
    """What one esp-dl release can read or run."""

    version: str
    reads_pdl3: bool  # multi-model packs (the firmware's model partition)
    reads_input1_layout: bool  # MatMul `input1_layout = "native_kn"`
    has_attention_op: bool  # a fused `Attention` operator


#: One row per esp-dl release the harness knows.
ESPDL_RELEASES: dict[str, EspdlFeatures] = {
    v.version: v
    for v in (
        EspdlFeatures("3.3.7", reads_pdl3=True, reads_input1_layout=False, has_attention_op=False),
        EspdlFeatures("3.3.8", reads_pdl3=True, reads_input1_layout=False, has_attention_op=False),
        EspdlFeatures("3.3.9", reads_pdl3=True, reads_input1_layout=False, has_attention_op=False),
    )
}
#: Not a release: an esp-dl that honours every attribute esp-ppq 1.3.12 writes (the emulator's "native").
NATIVE = EspdlFeatures("native", reads_pdl3=True, reads_input1_layout=True, has_attention_op=False)
#: What the emulator can emulate: every release, and "native".
EMULATED_RELEASES: dict[str, EspdlFeatures] = {**ESPDL_RELEASES, NATIVE.version: NATIVE}


def espdl_features(version: str | None = None) -> EspdlFeatures:
    """The features of esp-dl `version` (default: the firmware's pin); "native" included."""
    version = version or FIRMWARE_ESPDL_VERSION
    if version not in EMULATED_RELEASES:
        raise HarnessError(
            f"esp-dl {version!r} is not in the harness's release table ({', '.join(EMULATED_RELEASES)}); "
            "add a row to host/chip/releases.py after checking what that release reads"
        )
    return EMULATED_RELEASES[version]
