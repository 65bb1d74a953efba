#!/usr/bin/env python3
"""Efficiency of the image upload: image bytes per second over raw link bytes per second.

Runs the real codec (host/protocol: UploadSender, UploadReceiver, RequestDecoder, RecordDecoder)
over a simulated full-duplex link, so framing (14 bytes per chunk), the request line, the "ready"
round trip, acks and nak/retransmissions and any stall while the window waits for acks are all
counted. The link model:

* UART at B baud, 8N1: B/10 bytes/s each way; an ack (or any record) reaches the host after its
  own transmission time plus `latency` (the USB-UART bridge's latency timer and OS scheduling:
  1-16 ms; FTDI defaults to 16 ms, CP210x/CH34x deliver in ~1-2 ms).
* USB-Serial-JTAG (full-speed USB CDC): ASSUMED effective rate 1.0 MB/s for bulk OUT data
  (12 Mbit/s signalling; at most 19 x 64-byte bulk packets per 1 ms frame = 1.216 MB/s; the
  chip's 64-byte endpoint FIFO and driver copy make ~1 MB/s a reasonable planning figure, not a
  measurement), and an ack round trip of 2 ms (1 ms frame polling plus host scheduling).
* Device time per chunk (decode, CRC, copy) is charged on arrival (default 30 us per 4 KiB,
  about 140 MB/s, well below what a 360 MHz RISC-V or 240 MHz Xtensa core does for memcpy + CRC).

Efficiency = image bytes / (raw rate x time from the first request byte to the last ack).

Usage: python tools/protocol_throughput.py [--size 1228800] [--chunk 4096] [--window 16] [--codec-speed]
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host.protocol import messages as m  # noqa: E402
from host.protocol.stream import BadFrame, Record, RecordDecoder, RequestDecoder  # noqa: E402
from host.protocol.upload import UploadReceiver, UploadSender  # noqa: E402
from host.protocol.wire import CHUNK_OVERHEAD, Chunk, encode_line  # noqa: E402


@dataclass(frozen=True)
class Link:
    name: str
    rate: float  # payload bytes per second each way (after line coding)
    latency: float  # extra seconds before a device->host record reaches the host


UART_2M = Link("UART 2 Mbaud 8N1", 2_000_000 / 10, 0.002)
USJ = Link("USB-Serial-JTAG (assumed 1.0 MB/s)", 1_000_000, 0.002)


@dataclass
class Result:
    link: Link
    size: int
    chunk: int
    window: int
    seconds: float
    host_bytes: int
    retransmits: int

    @property
    def efficiency(self) -> float:
        return self.size / (self.seconds * self.link.rate)

    @property
    def framing_efficiency(self) -> float:
        return self.size / self.host_bytes


def simulate(link: Link, size: int = 640 * 640 * 3, chunk: int = 4096, window: int = 16, *,
             device_s_per_byte: float = 30e-6 / 4096, loss: float = 0.0, seed: int = 0) -> Result:
    """Event-driven run of one detect upload; returns the time to the last ack."""
    rng = random.Random(seed)
    image = bytes(rng.getrandbits(8) for _ in range(min(size, 4096))) * (size // 4096 + 1)
    image = image[:size]
    request = m.encode_request(m.detect_request(1, 640, size // (640 * 3), image, chunk=chunk, window=window))
    events: list[tuple[float, int, str, object]] = []
    order = 0

    def at(t: float, kind: str, data: object) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (t, order, kind, data))

    host_link_free = 0.0  # host->device serialisation
    dev_link_free = 0.0  # device->host serialisation
    host_bytes = len(request)
    host_link_free = len(request) / link.rate
    # The device answers "ready" once the request line is in.
    ready = encode_line(m.ready_record(1, 1, chunk, window, -(-size // chunk)))
    dev_link_free = host_link_free + len(ready) / link.rate
    at(dev_link_free + link.latency, "record", ready)

    sender: UploadSender | None = None
    receiver = UploadReceiver(1, size, chunk)
    device, host = RequestDecoder(max_payload=chunk), RecordDecoder()
    dev_busy = 0.0
    done_at = None

    def pump(now: float) -> None:
        nonlocal host_link_free, host_bytes
        if sender is None:
            return
        for frame in sender.poll(now):
            start = max(now, host_link_free)
            host_link_free = start + len(frame) / link.rate
            host_bytes += len(frame)
            if rng.random() < loss:
                frame = bytearray(frame)
                frame[rng.randrange(len(frame))] ^= 0x20
                frame = bytes(frame)
            at(host_link_free, "frame", frame)
        if not sender.done:
            at(max(now, host_link_free) + 0.05, "tick", None)  # timeout checks

    while events:
        now, _, kind, data = heapq.heappop(events)
        if kind == "record":
            for ev in host.feed(data):
                if isinstance(ev, Record):
                    if ev.body["t"] == m.READY:
                        sender = UploadSender(image, 1, chunk, window, timeout_s=0.5)
                    else:
                        sender.on_record(ev.body, now)
                        if sender.done and done_at is None:
                            done_at = now
            pump(now)
        elif kind == "frame":
            nonlocal_dev = max(now, dev_busy) + len(data) * device_s_per_byte
            dev_busy = nonlocal_dev
            for ev in device.feed(data):
                replies = (receiver.on_chunk(ev) if isinstance(ev, Chunk)
                           else receiver.on_bad_frame(ev.upload_id, ev.seq) if isinstance(ev, BadFrame) else [])
                for reply in replies:
                    line = encode_line(reply)
                    start = max(dev_busy, dev_link_free)
                    dev_link_free = start + len(line) / link.rate
                    at(dev_link_free + link.latency, "record", line)
        elif kind == "tick":
            pump(now)
        if done_at is not None:
            break
    assert sender is not None and sender.done and bytes(receiver.buffer) == image
    return Result(link, size, chunk, window, done_at, host_bytes, sender.retransmits)


def codec_speed(size: int = 640 * 640 * 3) -> tuple[float, float]:
    """MB/s of the Python codec itself: device-side decode+place of an upload, host-side record decode.

    The simulated DUT and the host must both outrun the link (1 MB/s) by a wide margin.
    """
    import time

    image = bytes(range(256)) * (size // 256 + 1)
    image = image[:size]
    stream = b"".join(UploadSender(image, 1, 4096, 1 << 30).poll(0.0))
    start = time.perf_counter()
    decoder, receiver = RequestDecoder(max_payload=4096), UploadReceiver(1, size, 4096)
    for pos in range(0, len(stream), 65536):
        for ev in decoder.feed(stream[pos:pos + 65536]):
            receiver.on_chunk(ev)
    device = len(stream) / (time.perf_counter() - start) / 1e6
    assert receiver.complete and bytes(receiver.buffer) == image
    lines = b"".join(encode_line(m.part_records(4, "x", image[i:i + 3072])[0]) for i in range(0, 3072 * 400, 3072))
    start = time.perf_counter()
    records = RecordDecoder().feed(lines)
    host = len(lines) / (time.perf_counter() - start) / 1e6
    assert len(records) == 400
    return device, host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=640 * 640 * 3, help="image bytes (640x640 RGB888)")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--codec-speed", action="store_true", help="also time the Python codec (MB/s)")
    args = parser.parse_args(argv)
    print(f"upload of {args.size} image bytes, chunk {args.chunk} B (+{CHUNK_OVERHEAD} B framing), "
          f"window {args.window}")
    print(f"{'link':38s} {'ack latency':>11s} {'time s':>8s} {'raw s':>8s} {'framing':>8s} {'efficiency':>10s}")
    rows = []
    for link in (UART_2M, USJ):
        for latency in (0.001, 0.002, 0.016):
            lk = Link(link.name, link.rate, latency)
            r = simulate(lk, args.size, args.chunk, args.window)
            rows.append(r)
            print(f"{lk.name:38s} {latency * 1000:9.0f}ms {r.seconds:8.3f} {args.size / lk.rate:8.3f} "
                  f"{r.framing_efficiency:8.2%} {r.efficiency:10.2%}")
    for window in (1, 2, 4):
        r = simulate(USJ, args.size, args.chunk, window)
        print(f"{'USJ, window ' + str(window) + ' (for comparison)':38s} {USJ.latency * 1000:9.0f}ms "
              f"{r.seconds:8.3f} {args.size / USJ.rate:8.3f} {r.framing_efficiency:8.2%} {r.efficiency:10.2%}")
    lossy = simulate(UART_2M, args.size, args.chunk, args.window, loss=0.01, seed=1)
    print(f"{'UART 2 Mbaud, 1% of chunks corrupted':38s} {UART_2M.latency * 1000:9.0f}ms {lossy.seconds:8.3f} "
          f"{args.size / UART_2M.rate:8.3f} {lossy.framing_efficiency:8.2%} {lossy.efficiency:10.2%}"
          f"  ({lossy.retransmits} retransmits)")
    if args.codec_speed:
        device, host = codec_speed(args.size)
        print(f"Python codec: device-side upload decode {device:.1f} MB/s, host-side record decode {host:.1f} MB/s")
    return 0 if all(r.efficiency >= 0.9 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
