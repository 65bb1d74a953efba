"""Start and stop the simulated DUT process and hand back the port it listens on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from host.errors import HarnessError

ROOT = Path(__file__).resolve().parents[3]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies (no-op elsewhere)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class SimProcess:
    proc: subprocess.Popen
    port: str
    banner: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_sim(pack: Path, target: str, faults: str = "", seed: int = 0, rev: int = 100,
              timeout_s: float = 60.0, link: str = "none") -> SimProcess:
    """Spawn `python -m host.dut.sim` and wait for it to report its pty (it loads the model first).

    link: the sim's link and device-time model, none|uart2m|usj (host/dut/sim/link.py).
    """
    from host.dut.sim.link import link_model

    link_model(link)  # an unknown name fails here, naming the choices
    cmd = [sys.executable, "-m", "host.dut.sim", "--pack", str(pack), "--target", target,
           "--faults", faults, "--seed", str(seed), "--rev", str(rev), "--link", link]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # No inherited stdin/stderr: a sim holding its parent's pipes (pytest-xdist's channel to a worker) would hide
    # the parent's death; and it dies with its parent (Linux PR_SET_PDEATHSIG), never outliving a killed harness.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env, cwd=ROOT, preexec_fn=_die_with_parent)
    deadline = time.monotonic() + timeout_s
    port, lines = None, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith("PTY "):
            port = line.split(None, 1)[1].strip()
        elif line.startswith("SIM "):
            break
        elif line.startswith("SIMERROR"):
            break
    if port is None or proc.poll() is not None:
        proc.kill()
        raise HarnessError("the simulated DUT did not start: " + (" | ".join(lines) or "no output"))
    return SimProcess(proc, port, lines[-1])
