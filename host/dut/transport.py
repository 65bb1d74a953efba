"""Byte transport to a device: any pyserial URL (a tty, a pty, socket://, rfc2217://), reopened on demand.

A board's USB port disappears while the chip resets or re-enumerates; `reopen` waits for it to come
back instead of failing on the first attempt.
"""

from __future__ import annotations

import time

import serial

from host.errors import HarnessError


class SerialTransport:
    """pyserial with short reads, so the protocol client keeps control of its own deadlines."""

    def __init__(self, url: str, baudrate: int = 2_000_000, open_timeout: float = 5.0) -> None:
        self.url = url
        self.baudrate = baudrate
        self.port: serial.SerialBase | None = None
        self.reopen(open_timeout)

    def _open(self) -> serial.SerialBase:
        port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0, write_timeout=10,
                                     do_not_open=True)
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
        assert self.port is not None
        self.port.timeout = timeout
        first = self.port.read(1)
        if not first:
            return b""
        waiting = self.port.in_waiting
        return first + (self.port.read(waiting) if waiting else b"")

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            finally:
                self.port = None
