"""Which esp-dl release reads which graph attributes, in one table, so the emulator follows the firmware's esp-dl.

esp-ppq >= 1.3.10 marks MatMuls whose right operand is an activation with input1_layout="native_kn" and feeds
that operand row-major (K x N). esp-dl 3.3.9 does not read the attribute (its MatMul module hands the right
operand to the conv kernel as a packed (N/16)HWC16 filter), so such a model computes different numbers on
that esp-dl. The releases and what they read live in one table, host/compat.py (shared with the export
side and `espdl check`); this module adds the emulator's view of it and the "native" pseudo-release.
"""

from __future__ import annotations

from dataclasses import dataclass

from host import compat
from host.errors import HarnessError


@dataclass(frozen=True)
class EspdlFeatures:
    """What one esp-dl release understands, as far as the emulator's results depend on it."""

    version: str
    reads_matmul_input1_layout: bool  # honours MatMul input1_layout == "native_kn"


# version -> features, from host/compat.py. "native" is not a release: an esp-dl that honours every
# attribute esp-ppq 1.3.12 writes.
ESPDL_VERSIONS: dict[str, EspdlFeatures] = {
    **{v: EspdlFeatures(v, reads_matmul_input1_layout=f.reads_input1_layout) for v, f in compat.ESPDL_RELEASES.items()},
    "native": EspdlFeatures("native", reads_matmul_input1_layout=True),
}
DEFAULT_ESPDL_VERSION = compat.FIRMWARE_ESPDL_VERSION


def features(version: str) -> EspdlFeatures:
    try:
        return ESPDL_VERSIONS[version]
    except KeyError:
        raise HarnessError(
            f"the emulator does not know esp-dl {version!r}; known: {sorted(ESPDL_VERSIONS)}. "
            "Add a row to ESPDL_RELEASES in host/compat.py after checking that release's MatMul module"
        ) from None
