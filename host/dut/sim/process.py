"""The simulated DUT as a process behind a pseudo-terminal, the way a board sits behind a USB serial port.

`python -m host.dut.sim --pack model.bin --target esp32p4` opens a pty in raw mode (no echo, no
newline translation), prints `PTY <path>` on stdout and stays silent until the host writes its
first byte (the handshake: pyserial flushes input on open, so anything printed earlier would be
lost). It then boots - prints its boot record - and serves requests until the host closes the
port or the process is stopped. `--link none|uart2m|usj` paces the bytes both ways and makes the model
operations take the modelled chip time (host/dut/sim/link.py); independent of the fault plan.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
import tty
from pathlib import Path

from host.dut.sim.device import SimDevice
from host.dut.sim.faults import FaultPlan
from host.dut.sim.link import DEFAULT_LINK, LINKS, LinkModel, PacedInput, PacedOutput, link_model


class ThrottledWriter:
    """Writes to the pty master, optionally at a limited byte rate (the `slow_link` fault)."""

    def __init__(self, fd: int, bytes_per_s: int = 0) -> None:
        self.fd = fd
        self.rate = bytes_per_s

    def __call__(self, data: bytes) -> None:
        view = memoryview(data)
        step = max(1, self.rate // 50) if self.rate else len(view)
        while view:
            piece, view = view[:step], view[step:]
            while piece:
                try:
                    written = os.write(self.fd, piece)
                except BlockingIOError:
                    select.select([], [self.fd], [], 0.05)
                    continue
                piece = piece[written:]
            if self.rate:
                time.sleep(step / self.rate)


def serve(pack: Path, target: str, faults: FaultPlan, seed: int, rev: int,
          link: LinkModel = LINKS[DEFAULT_LINK]) -> int:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    # The worker thread of a queued detect wakes this loop through a pipe when it has finished.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)

    def wake() -> None:
        try:
            os.write(wake_w, b"!")
        except BlockingIOError:  # the pipe already holds a wake-up
            pass

    writer = ThrottledWriter(master, faults.slow_link)
    output = PacedOutput(link, writer) if link.paced else writer
    inbound = PacedInput(link)
    device = SimDevice(pack.read_bytes(), target, output, faults, seed=seed, rev=rev,
                       compute_wait=link.compute_wait, on_job_done=wake)
    print(f"PTY {os.ttyname(slave)}", flush=True)
    print(f"SIM target={target} model_sha256={device.model_sha256} faults={faults.describe()} link={link.name}",
          flush=True)
    while True:
        now = time.monotonic()
        due = inbound.next_due()
        timeout = 0.2 if due is None else min(0.2, max(0.0, due - now))
        ready, _, _ = select.select([master, wake_r], [], [], timeout)
        if wake_r in ready:
            try:
                os.read(wake_r, 64)
            except BlockingIOError:
                pass
        if master in ready:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                data = b""
            except OSError:  # EIO: every handle on the slave side was closed
                # opened or not: the host reopens the port (reconnect) or has yet to open it; keep serving
                time.sleep(0.05)
                data = b""
            if data:
                inbound.receive(data, time.monotonic())
        arrived = inbound.due(time.monotonic())
        if arrived:
            device.feed(arrived)
        device.poll()  # expires a stalled upload and answers finished queued detects, as the firmware's loop does
        if not ready and os.getppid() == 1:  # the harness died: do not outlive it
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m host.dut.sim", description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, required=True, help="PDL3 model-partition image (as flashed)")
    parser.add_argument("--target", default="esp32p4")
    parser.add_argument("--faults", default="", help="comma-separated fault plan, see host/dut/sim/faults.py")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latency noise")
    parser.add_argument("--rev", type=int, default=100, help="chip revision reported (major*100+minor)")
    parser.add_argument("--link", default=DEFAULT_LINK, choices=sorted(LINKS),
                        help="link and device-time model: none (the pty as fast as it goes), uart2m, usj "
                             "(paced, and the modelled chip compute time is taken); see host/dut/sim/link.py")
    args = parser.parse_args(argv)
    try:
        return serve(args.pack, args.target, FaultPlan.parse(args.faults), args.seed, args.rev,
                     link_model(args.link))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # reported to the launcher, which names it in its error
        print(f"SIMERROR {type(exc).__name__}: {exc}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
