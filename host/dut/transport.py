"""Byte transport to a device: any pyserial URL (a tty, a pty, socket://, rfc2217://), reopened on demand.

A board's USB port disappears while the chip resets or re-enumerates; `reopen` waits for it to come
back instead of failing on the first attempt.
"""

from __future__ import annotations

import time

import serial

from host.errors import HarnessError

READ_SLICE_S = 0.02  # the port's fixed read timeout; `read(timeout)` waits in slices of it


class SerialTransport:
    """pyserial with short reads, so the protocol client keeps control of its own deadlines."""

    def __init__(self, url: str, baudrate: int = 2_000_000, open_timeout: float = 5.0) -> None:
        self.url = url
        self.baudrate = baudrate
        self.port: serial.SerialBase | None = None
        self.reopen(open_timeout)

    def _open(self) -> serial.SerialBase:
        # RFC2217 (pyserial's and labgrid's fork) supports no write timeout; and it costs a network round trip to
        # change the read timeout, so it is set once here and `read` loops over it.
        remote = self.url.startswith("rfc2217://")
        port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=READ_SLICE_S,
                                     write_timeout=None if remote else 10, do_not_open=True)
        if isinstance(port, serial.Serial) and self.url.startswith("/dev/"):
            port.exclusive = True  # a second harness on the same board must fail, not interleave
        port.open()
        return port

    def reopen(self, timeout: float) -> None:
        self.close()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            try:
                self.port = self._open()
                return
            except (serial.SerialException, OSError, ValueError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise HarnessError(f"cannot open serial port {self.url} ({last}); check the cable and --port, "
                                   "and that no other program (idf.py monitor) holds the port")
            time.sleep(0.1)

    def write(self, data: bytes) -> None:
        assert self.port is not None
        self.port.write(data)
        self.port.flush()

    def read(self, timeout: float) -> bytes:
        """Whatever arrives within `timeout` s (at least one byte, or b"" when nothing came)."""
        assert self.port is not None
        deadline = time.monotonic() + timeout
        while True:
            first = self.port.read(1)
            if first:
                waiting = self.port.in_waiting
                return first + (self.port.read(waiting) if waiting else b"")
            if time.monotonic() >= deadline:
                return b""

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            finally:
                self.port = None
