"""The simulated-DUT kind: the flashed pack served by a process behind a pty, with a stated latency model.

The sim runs the .espdl in the host int8 emulator (not the ESP-PPQ executor the reference uses), so a
sim session compares two implementations. Its latencies are modelled (host.dut.sim.latency) and
labelled `simulated` everywhere; its fidelity limits (emulator notes) go into the provenance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from host.dut.backend import Artifact, DutOptions
from host.dut.client import ProtocolClient
from host.dut.dut import Dut
from host.dut.sim.launcher import SimProcess, start_sim
from host.dut.transport import SerialTransport

BOOT_TIMEOUT_S = 30.0


class SimBackend:
    """Starts `python -m host.dut.sim` on the artifact's pack; `reset` restarts the process."""

    kind = "sim"
    targets = ("esp32p4", "esp32s3")
    timed = False
    latency_label = "simulated"
    banner = "results are from the SIMULATED DUT, latencies are simulated"

    def __init__(self, options: DutOptions, rev: int = 100) -> None:
        self.options = options
        self.rev = rev
        self.artifact: Artifact | None = None
        self.process: SimProcess | None = None

    def prepare(self, artifact: Artifact) -> None:
        """Build esp-dl's C++ pre/postprocess for the host now (cached), so the sim process starts fast; a build
        that fails is not an error here: the sim then runs host.chip's and says so (`prepost`)."""
        self.artifact = artifact
        from host import espdl_cpp

        espdl_cpp.status(self.options.target)

    def open(self) -> Dut:
        if self.artifact is None:
            raise RuntimeError("SimBackend.open() before prepare()")
        o = self.options
        self.process = start_sim(self.artifact.pack, o.target, faults=o.sim_faults, seed=o.sim_seed, rev=self.rev,
                                 link=o.sim_link)
        process = self.process
        try:
            transport = SerialTransport(process.port)
            client = ProtocolClient(transport, timeout_s=o.timeout_s)
            dut = Dut(self.kind, client, o.target, process.port, self.timed, self.latency_label,
                      close_hooks=[process.stop])
            transport.write(b"\n")  # the handshake: the sim boots when the host is listening
            dut.boot = client.wait_for_boot(BOOT_TIMEOUT_S)
        except BaseException:
            process.stop()
            raise
        return dut

    def reset(self, dut: Dut) -> dict[str, Any]:
        """A power cycle: the process restarts on the same pack (uploads and tensors are forgotten)."""
        dut.close()
        return dut.reconnect(self.open())

    def provenance(self, dut: Dut) -> dict[str, Any]:
        return {"port": dut.port, "firmware_config": "sim", "sdkconfig_sha256": "n/a (simulated DUT)",
                "sim_prepost": dut.info().raw.get("prepost", "host.chip (python)"),
                "sim_faults": self.options.sim_faults or "none", "sim_seed": self.options.sim_seed,
                "sim_link": self.options.sim_link,
                "sim_emulator_notes": emulator_notes(self.artifact, self.options.target)}


def open_sim(pack: Path, target: str, faults: str = "", seed: int = 0, timeout_s: float = 60.0,
             rev: int = 100, link: str = "none") -> Dut:
    """A sim DUT on a PDL3 pack, opened and booted: for scripts and the harness's own tests.

    link: none|uart2m|usj, the sim's link and device-time model (host/dut/sim/link.py)."""
    backend = SimBackend(DutOptions(target=target, timeout_s=timeout_s, sim_faults=faults, sim_seed=seed,
                                    sim_link=link), rev=rev)
    backend.prepare(Artifact(pack, None, ""))
    return backend.open()


def emulator_notes(artifact: Artifact | None, target: str) -> list[str]:
    """What the sim's emulator cannot prove about this model on the embedded test input (e.g. ESP32-S3
    convs whose 20-bit lanes could saturate on the chip): the sim's fidelity limits, for the report."""
    from host.chip.releases import FIRMWARE_ESPDL_VERSION
    from host.espdl import load, selftest

    if artifact is None or artifact.espdl is None:
        return []
    espdl = load(artifact.espdl)
    if not espdl.test_inputs:
        return ["no embedded test values: the emulator's fidelity notes were not computed"]
    return [f"{node}: {note}" for node, note in selftest(espdl, target, FIRMWARE_ESPDL_VERSION).notes.items()]
