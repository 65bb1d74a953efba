"""What every DUT kind provides, in one small protocol: prepare the artifact, open a Dut, reset, provenance.

A kind is one module (host.dut.board, host.dut.sim.backend) with a class of this shape; selection
(host.dut.select) is a table of those classes. Nothing here needs pytest: a DUT can be built and
driven from a script as well as from the plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from host.dut.dut import Dut
from host.errors import HarnessError


class DutUnavailable(HarnessError):
    """This kind cannot run here (e.g. no firmware build and no ESP-IDF): the message says what is missing."""


@dataclass(frozen=True)
class DutOptions:
    """Everything a backend may need from the user, typed; built once from the command line."""

    target: str
    port: str | None = None
    timeout_s: float = 120.0
    firmware_config: str = "uart"
    flash_baud: int = 921600
    sim_faults: str = ""
    sim_seed: int = 0
    sim_link: str = "none"  # the sim's link and device-time model: none, uart2m, usj (host/dut/sim/link.py)


@dataclass(frozen=True)
class Artifact:
    """What gets flashed: the PDL3 model-partition image, and the .espdl inside it."""

    pack: Path
    espdl: Path | None  # None when only the pack is at hand (scripts)
    model_sha256: str


class DutBackend(Protocol):
    """One DUT kind. `prepare` once per session, then `open`; `reset` reboots it; `provenance` says what ran."""

    kind: str
    targets: tuple[str, ...]
    timed: bool  # True only when latencies are a chip's own measurements
    latency_label: str  # "measured", "simulated", ...
    banner: str  # what the session header must add about results of this kind ("" for none)

    def prepare(self, artifact: Artifact) -> None: ...
    def open(self) -> Dut: ...
    def reset(self, dut: Dut) -> dict[str, Any]: ...
    def provenance(self, dut: Dut) -> dict[str, Any]: ...
