"""Sans-IO state machines for the acknowledged, windowed image upload (sender and receiver).

Why a window: at 2 Mbaud a 640x640 RGB888 image takes ~6 s of pure link time; waiting for an ack
after each chunk would add one round trip (USB-serial latency timers make that 1-16 ms) per chunk.
The sender keeps up to `window` chunks in flight; the receiver acks the highest contiguous chunk
("next") and NAKs chunks it saw corrupted or skipped, so only damaged chunks are resent. The
receiver writes every chunk straight to its offset, so out-of-order arrival costs nothing.
Time is passed in by the caller (`now`, seconds), so the machines run the same under a simulated
clock (tools/protocol_throughput.py) and on a real port.
"""

from __future__ import annotations

from typing import Any

from host.protocol.messages import ACK, NAK, ack_record, nak_record
from host.protocol.wire import Chunk, encode_chunk


class UploadFailed(Exception):
    """The upload cannot complete (a chunk exceeded its retry budget)."""


def chunk_count(size: int, chunk: int) -> int:
    return (size + chunk - 1) // chunk


class UploadSender:
    """Host side: decides which chunk frames to send and when."""

    def __init__(self, data: bytes, upload_id: int, chunk: int, window: int, *, timeout_s: float = 1.0,
                 max_retries: int = 8) -> None:
        if chunk < 1 or window < 1 or not data:
            raise ValueError("upload needs data, chunk >= 1 and window >= 1")
        self.data = data
        self.upload_id = upload_id
        self.chunk = chunk
        self.window = window
        self.n = chunk_count(len(data), chunk)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.acked = 0  # all chunks below this are confirmed
        self._next_new = 0  # next chunk never sent before
        self._resend: list[int] = []
        self._retries: dict[int, int] = {}
        self._last_progress: float | None = None
        self.frames_sent = 0
        self.bytes_sent = 0
        self.retransmits = 0

    @property
    def done(self) -> bool:
        return self.acked >= self.n

    def frame(self, seq: int) -> bytes:
        return encode_chunk(Chunk(self.upload_id, seq, self.data[seq * self.chunk:(seq + 1) * self.chunk]))

    def _queue_resend(self, seq: int) -> None:
        count = self._retries.get(seq, 0) + 1
        if count > self.max_retries:
            raise UploadFailed(f"chunk {seq} of upload {self.upload_id} failed {self.max_retries} retransmissions")
        self._retries[seq] = count
        if seq not in self._resend:
            self._resend.append(seq)

    def poll(self, now: float) -> list[bytes]:
        """Frames to write now (retransmissions first, then new chunks the window allows)."""
        if self._last_progress is None:
            self._last_progress = now
        if not self.done and now - self._last_progress > self.timeout_s:
            self._last_progress = now
            self._queue_resend(self.acked)
        out: list[bytes] = []
        for seq in self._resend:
            if seq >= self.acked:
                out.append(self.frame(seq))
                self.retransmits += 1
        self._resend.clear()
        while self._next_new < min(self.n, self.acked + self.window):
            out.append(self.frame(self._next_new))
            self._next_new += 1
        self.frames_sent += len(out)
        self.bytes_sent += sum(len(f) for f in out)
        return out

    def on_record(self, body: dict[str, Any], now: float) -> None:
        """Feed an "ack"/"nak" record of this upload; other records are ignored."""
        if body.get("up") != self.upload_id:
            return
        if body["t"] == ACK:
            nxt = int(body["next"])
            if nxt > self.acked:
                self.acked = min(nxt, self.n)
                self._last_progress = now
        elif body["t"] == NAK:
            seq = int(body["seq"])
            if self.acked <= seq < self._next_new:
                self._queue_resend(seq)


class UploadReceiver:
    """Device side: places chunks, answers with ack/nak records, knows when the image is whole."""

    def __init__(self, upload_id: int, size: int, chunk: int, buffer: bytearray | None = None) -> None:
        self.upload_id = upload_id
        self.size = size
        self.chunk = chunk
        self.n = chunk_count(size, chunk)
        self.buffer = buffer if buffer is not None else bytearray(size)
        self._have = bytearray(self.n)
        self._naked = bytearray(self.n)
        self.next = 0

    @property
    def complete(self) -> bool:
        return self.next >= self.n

    def _expected_len(self, seq: int) -> int:
        return min(self.chunk, self.size - seq * self.chunk)

    def on_chunk(self, chunk: Chunk) -> list[dict[str, Any]]:
        """Records to send in answer to a CRC-valid chunk frame."""
        if chunk.upload_id != self.upload_id or chunk.seq >= self.n:
            return []  # a stale upload's frame, or garbage that passed the CRC: ignore
        seq = chunk.seq
        if len(chunk.payload) != self._expected_len(seq):
            return [nak_record(self.upload_id, seq)]
        if self._have[seq]:
            return [ack_record(self.upload_id, self.next)]  # duplicate: our ack may have been lost
        self.buffer[seq * self.chunk:seq * self.chunk + len(chunk.payload)] = chunk.payload
        self._have[seq] = 1
        out: list[dict[str, Any]] = []
        for gap in range(self.next, seq):  # FIFO link: a gap is a lost or corrupted chunk
            if not self._have[gap] and not self._naked[gap]:
                self._naked[gap] = 1
                out.append(nak_record(self.upload_id, gap))
        before = self.next
        while self.next < self.n and self._have[self.next]:
            self.next += 1
        if self.next > before:
            out.append(ack_record(self.upload_id, self.next))
        return out

    def on_bad_frame(self, upload_id: int | None, seq: int | None) -> list[dict[str, Any]]:
        """A chunk failed its CRC; if its (unverified) header names a missing chunk of ours, NAK it."""
        if upload_id != self.upload_id or seq is None or not self.next <= seq < self.n or self._have[seq]:
            return []
        self._naked[seq] = 1
        return [nak_record(self.upload_id, seq)]
