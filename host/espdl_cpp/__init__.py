"""esp-dl's own C++ preprocess and postprocess, built for the host: a second reference next to host.chip.

`preprocess` / `postprocess` have host.chip's signatures and return its types; the numbers come from esp-dl's
`dl::image::ImagePreprocessor` and `dl::detect::yolo11PostProcessor` compiled on demand (host.espdl_cpp.builder,
cached) with the chip's rounding rule (one library for ESP32-P4/S31, one for ESP32-S3), its newlib expf/logf and
GCC's float contraction. `status()` says whether it can run here and, if not, what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from host.espdl_cpp.api import (FLOAT_MODEL, IMPLEMENTATION, MAX_CANDIDATES, TooManyCandidates, built, library,
                                postprocess, preprocess)
from host.espdl_cpp.builder import EspdlCppUnavailable, build, espdl_path, variant_of
from host.errors import HarnessError

PYTHON_IMPLEMENTATION = "host.chip (python)"


@dataclass(frozen=True)
class Status:
    available: bool
    description: str  # IMPLEMENTATION plus the build, or why not: for an info record or a report

    def __bool__(self) -> bool:
        return self.available


def status(target: str) -> Status:
    """Build (or find) the library for `target` and load it; never raises for a missing compiler or esp-dl."""
    try:
        library(target)
        info = built().info
        fma = "" if info.get("fma") else ", no FMA on this host: last-bit float differences possible"
        return Status(True, f"{IMPLEMENTATION}: esp-dl at {info['espdl_path']}, {variant_of(target)} build{fma}")
    except HarnessError as exc:  # EspdlCppUnavailable, a failed build or load
        return Status(False, f"{PYTHON_IMPLEMENTATION}: esp-dl C++ unavailable ({exc})")
    except OSError as exc:
        return Status(False, f"{PYTHON_IMPLEMENTATION}: esp-dl C++ library failed to load ({exc})")


__all__ = ["FLOAT_MODEL", "IMPLEMENTATION", "MAX_CANDIDATES", "PYTHON_IMPLEMENTATION", "EspdlCppUnavailable", "Status",
           "TooManyCandidates", "build", "built", "espdl_path", "library", "postprocess", "preprocess", "status",
           "variant_of"]
