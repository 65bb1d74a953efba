"""The device end of the protocol: Python DeviceService rules, and parity with the firmware's C++ Service."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import time

import pytest
from types import SimpleNamespace

from host.protocol import messages as m
from host.protocol.device import DeviceBackend, DeviceService, LayerUs, Limits, StageUs, TensorView
from host.protocol.stream import Record, RecordDecoder
from host.dut.client import DutRebooted, DutReportedError, ProtocolClient
from host.dut.dut import Dut
from host.protocol.wire import Chunk, crc32, encode_chunk, encode_line

ROOT = Path(__file__).resolve().parents[3]

# The same limits the C++ test binary's "serve" mode uses.
LIMITS = Limits(max_image=30000, chunk_max=1000, window_max=8, rx_buffer=4000, upload_timeout_ms=500)


class FakeBackend(DeviceBackend):
    """Twin of firmware/components/hil_protocol/test/fake_backend.hpp: fixed answers, manual clock."""

    def __init__(self, compute_us: int = 0) -> None:
        self.clock_us = 0
        self.sent: list[bytes] = []
        self.model_code: str | None = None
        self.current = False
        self.image: bytes | None = None
        self.compute_us = compute_us  # queued detects finish this long after they started (manual clock)
        self.job: tuple[int, tuple] | None = None

    def now_us(self) -> int:
        return self.clock_us

    def send(self, line: bytes) -> None:
        self.sent.append(line)

    def info(self) -> dict:
        return dict(chip="fake", rev=0, cores=0, idf="", espdl="", app_version="", app_sha256="",
                    model_state="missing" if self.model_code else "ok", model_name="", model_sha256="",
                    pack_sha256="", inputs=[], outputs=[], heap={k: 0 for k in m.HEAP_FIELDS}, console="test",
                    selftest="not_run")

    def accepts_image(self, width, height):
        return None if width <= 100 * height and height <= 100 * width else "fake: at most 100:1 aspect"

    def model_error(self):
        return (self.model_code, "fake model problem") if self.model_code else None

    def detect(self, image, params):
        self.image = image
        self.current = True
        return [m.Box(1, 0.5, 0, 0, params.width - 1, params.height - 1)], StageUs(10, 20, 30)

    def submit_detect(self, image, params):
        assert self.job is None, "the service must never start a second job"
        self.job = (self.clock_us, self.detect(image, params))

    def detect_done(self, wait):
        if self.job is None:
            return None
        start, result = self.job
        if not wait and self.clock_us - start < self.compute_us:
            return None
        self.clock_us = max(self.clock_us, start + self.compute_us)  # waiting takes the rest of the compute time
        self.job = None
        return result

    def rerun(self):
        assert self.image is not None, "the service must never rerun without an image"
        return StageUs(11, 21, 31)

    def forget_image(self):
        self.image = None
        self.current = False

    def selftest(self):
        self.current = False
        return True, 99

    def profile(self):
        self.current = False
        return [LayerUs("/conv0", "Conv", 3), LayerUs("/act0", "Swish", 4)], 7

    def tensors(self):
        if not self.current:
            return []
        return [TensorView("images", "int8", [1, 4, 4, 3], -7, bytes([7]) * 48),
                TensorView("score0", "int8", [1, 10, 10, 50], -2, bytes([3]) * 5000)]


def serve(data: bytes, compute_us: int = 0) -> list[bytes]:
    """Python side of the C++ "serve" mode: 64-byte slices, 1 ms per slice, poll after each."""
    backend = FakeBackend(compute_us)
    service = DeviceService(backend, LIMITS)
    for pos in range(0, len(data), 64):
        service.feed(data[pos:pos + 64])
        backend.clock_us += 1000
        service.poll()
        assert service.images_held <= 2, "more than two image buffers held"
    return backend.sent


def bodies(lines: list[bytes]) -> list[dict]:
    events = RecordDecoder().feed(b"".join(lines))
    assert all(isinstance(e, Record) for e in events)
    return [e.body for e in events]


def req(kind: str, req_id: int, **fields) -> bytes:
    return m.encode_request(m.request(kind, req_id, **fields))


IMAGE = bytes((i * 31) & 0xFF for i in range(20 * 30 * 3))


def session_bytes(rng: random.Random) -> bytes:
    """A session with every request kind, bad input, a lossy upload and a stalled one."""
    out = [b"\x00garbage", req(m.INFO, 1), req("reboot", 2), b"@HIL {\"t\":\"info\"} 00000000\n",
           req(m.BENCH, 3), req(m.DETECT, 4, w=20, h=30, fmt="rgb888", size=len(IMAGE), crc=crc32(IMAGE),
                                chunk=500, win=64)]
    frames = [encode_chunk(Chunk(1, s, IMAGE[s * 500:(s + 1) * 500])) for s in range(4)]
    order = [0, 2, 1, 1, 3]
    for s in order:
        frame = bytearray(frames[s])
        if rng.random() < 0.2:
            frame[rng.randrange(len(frame))] ^= 0x10
        out.append(bytes(frame))
    out += [req(m.DETECT, 5, w=20, h=30, fmt="rgb888", size=len(IMAGE), crc=crc32(IMAGE), chunk=500)]
    out += [encode_chunk(Chunk(2, s, IMAGE[s * 500:(s + 1) * 500])) for s in range(4)]
    out += [req(m.BENCH, 6, warmup=2, runs=3), req(m.DUMP, 7), req(m.PROFILE, 8), req(m.DUMP, 9),
            req(m.SELFTEST, 10), req(m.DETECT, 11, w=200, h=100, fmt="rgb888", size=60000, crc=1),
            req(m.DETECT, 13, w=1000, h=3, fmt="rgb888", size=9000, crc=5),
            req(m.DETECT, 12, w=20, h=30, fmt="rgb888", size=len(IMAGE), crc=5), b"\xa5" * 40000]
    return b"".join(out)


def test_python_service_answers_every_request_and_error():
    sent = bodies(serve(session_bytes(random.Random(0))))
    kinds = [(b["t"], b.get("code")) for b in sent]
    assert kinds[:4] == [("info", None), ("error", "unknown_request"), ("error", "bad_crc"), ("error", "no_image")]
    assert ("ready", None) in kinds and ("detect", None) in kinds
    assert [b["t"] for b in sent if b.get("id") == 6] == ["run", "run", "run", "bench"]
    assert [b["t"] for b in sent if b.get("id") == 7] == ["tensor", "part", "tensor", "part", "part", "dump"]
    assert [b["t"] for b in sent if b.get("id") == 8] == ["layer", "layer", "profile"]
    assert [b.get("code") for b in sent if b.get("id") == 9] == ["no_image"]  # profile overwrote the tensors
    assert any(b.get("code") == "too_large" and b["id"] == 11 for b in sent)
    assert [b.get("code") for b in sent if b.get("id") == 13] == ["bad_request"]  # letterbox would be empty
    assert sent[-1] == {"t": "error", "id": 12, "code": "upload_timeout",
                        "msg": "no valid chunk within the upload timeout; send detect again"}
    detect = next(b for b in sent if b["t"] == "detect" and b["id"] == 5)
    assert m.parse_detect(detect).boxes == (m.Box(1, 0.5, 0, 0, 19, 29),)


def queued_session_bytes(rng: random.Random) -> bytes:
    """Queued detects (protocol 2) interleaved with plain requests, a refused third upload and corruption.

    With 100 ms of compute per queued detect (the "serve" clock: 1 ms per 64-byte slice) the second upload
    lands while the first image computes, and the third queued request finds both images held (busy).
    """
    q = dict(w=20, h=30, fmt="rgb888", size=len(IMAGE), crc=crc32(IMAGE), chunk=500, queue=True)
    out = [req(m.DETECT, 20, **q)]
    up = 0

    def upload(corrupt: bool) -> None:
        nonlocal up
        up += 1
        for s in range(4):
            frame = bytearray(encode_chunk(Chunk(up, s, IMAGE[s * 500:(s + 1) * 500])))
            if corrupt and rng.random() < 0.3:
                frame[rng.randrange(len(frame))] ^= 0x08
            out.append(bytes(frame))
        if corrupt:  # resend everything: duplicates are acked again, a corrupted chunk is replaced
            out.extend(encode_chunk(Chunk(up, s, IMAGE[s * 500:(s + 1) * 500])) for s in range(4))

    upload(False)
    out.append(req(m.DETECT, 21, **q))
    upload(True)
    out += [req(m.DETECT, 22, **q), req(m.INFO, 23), req(m.DUMP, 24)]
    out.append(req(m.DETECT, 25, **q))
    upload(False)
    out.append(req(m.DETECT, 26, **q))
    upload(False)
    out += [req(m.BENCH, 27, warmup=0, runs=2)]
    out.append(req(m.DETECT, 28, **q))
    upload(False)
    out += [req(m.DETECT, 29, **{**q, "queue": 1}), req(m.DETECT, 30, **{**q, "crc": 7})]
    upload(False)
    out += [b"\x00noise", req(m.DETECT, 31, **q)]
    upload(False)
    out.append(req(m.DETECT, 32, w=20, h=30, fmt="rgb888", size=len(IMAGE), crc=crc32(IMAGE), chunk=500))
    up += 1
    out += [encode_chunk(Chunk(up, s, IMAGE[s * 500:(s + 1) * 500])) for s in range(4)]
    out += [req(m.DETECT, 33, **q), b"\xa5" * 40000]  # never uploaded: times out
    return b"".join(out)


def test_queued_detects_are_answered_in_order_with_at_most_two_images():
    sent = bodies(serve(queued_session_bytes(random.Random(0)), compute_us=100_000))
    finals = [(b["id"], b["t"], b.get("code")) for b in sent if b["t"] not in ("ready", "ack", "nak", "tensor", "part",
                                                                             "run")]
    assert (22, "error", m.E_BUSY) in finals  # two images held: the third upload is refused
    detects = [i for i, t, _ in finals if t == "detect"]
    assert detects == sorted(detects) == [20, 21, 25, 26, 28, 31, 32]
    # info waits for the queued detects; bench reruns the last one; queue must be a boolean
    assert finals.index((21, "detect", None)) < finals.index((23, "info", None))
    info = next(b for b in sent if b["t"] == "info")
    assert info["proto"] == 2 and info["queue"] == 2
    assert (29, "error", m.E_BAD_REQUEST) in finals and (30, "error", m.E_IMAGE_CRC) in finals
    assert finals[-1] == (33, "error", m.E_UPLOAD_TIMEOUT)


def test_third_queued_upload_is_refused_with_the_golden_busy_record():
    backend = FakeBackend(compute_us=10**9)  # nothing finishes
    service = DeviceService(backend, LIMITS)
    q = dict(w=20, h=30, fmt="rgb888", size=len(IMAGE), crc=crc32(IMAGE), chunk=500, queue=True)
    for req_id, up in ((1, 1), (2, 2)):
        service.feed(req(m.DETECT, req_id, **q))
        service.feed(b"".join(encode_chunk(Chunk(up, s, IMAGE[s * 500:(s + 1) * 500])) for s in range(4)))
        service.poll()
    assert service.computing and service.images_held == 2
    backend.sent.clear()
    service.feed(req(m.DETECT, 8, **q))
    golden = (ROOT / "fixtures" / "protocol" / "rec_error_busy.bin").read_bytes()
    assert backend.sent == [golden]
    assert service.images_held == 2 and not service.uploading
    backend.sent.clear()
    backend.clock_us += 10**9  # the first finishes: its buffer is freed once the second starts
    service.poll()
    assert [b["id"] for b in bodies(backend.sent)] == [1] and service.images_held == 1


def test_cpp_service_and_python_service_agree_on_queued_detects(cpp_test, tmp_path):
    sessions = [queued_session_bytes(random.Random(seed)) for seed in range(6)]
    paths = []
    for k, data in enumerate(sessions):
        path = tmp_path / f"queued{k}.bin"
        path.write_bytes(data)
        paths.append(path)
    result = subprocess.run([str(cpp_test), "serve", "--compute-us=100000", *map(str, paths)], capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.split(b"=== ")[1:]
    assert len(blocks) == len(sessions)
    for data, block in zip(sessions, blocks):
        cpp = bodies([block.split(b"\n", 1)[1]])
        py = bodies(serve(data, compute_us=100_000))
        strip = lambda bs: [{k: v for k, v in b.items() if k != "msg"} for b in bs]  # noqa: E731
        assert strip(cpp) == strip(py)
        busy = lambda bs: [b["msg"] for b in bs if b.get("code") == m.E_BUSY]  # noqa: E731
        assert busy(cpp) == busy(py)


def test_model_problem_is_reported_before_any_upload():
    backend = FakeBackend()
    backend.model_code = m.E_MODEL_SHA256
    service = DeviceService(backend, LIMITS)
    service.feed(req(m.DETECT, 1, w=2, h=2, fmt="rgb888", size=12, crc=0) + req(m.INFO, 2))
    sent = bodies(backend.sent)
    assert sent[0]["code"] == m.E_MODEL_SHA256 and not service.uploading
    assert sent[1]["t"] == "info" and sent[1]["model"] == "missing"


def test_cpp_service_and_python_service_give_the_same_answers(cpp_test, tmp_path):
    """Parity on 12 sessions (random corruption) and the golden device stream: same records, same order.

    Error messages ("msg") may be worded differently; everything else must be identical.
    """
    sessions = [session_bytes(random.Random(seed)) for seed in range(12)]
    sessions.append((ROOT / "fixtures" / "protocol" / "stream_device.bin").read_bytes())
    paths = []
    for k, data in enumerate(sessions):
        path = tmp_path / f"session{k}.bin"
        path.write_bytes(data)
        paths.append(path)
    result = subprocess.run([str(cpp_test), "serve", *map(str, paths)], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.split(b"=== ")[1:]
    assert len(blocks) == len(sessions)
    for data, block in zip(sessions, blocks):
        cpp = bodies([block.split(b"\n", 1)[1]])
        py = bodies(serve(data))
        strip = lambda bs: [{k: v for k, v in b.items() if k != "msg"} for b in bs]  # noqa: E731
        assert strip(cpp) == strip(py)
        assert len(py) > 3


class Loop:
    """An in-memory link: host writes go straight into the device service; device output is read back."""

    def __init__(self, corrupt_every: int = 0) -> None:
        self.backend = FakeBackend()
        self.service = DeviceService(self.backend, LIMITS)
        self.writes = 0
        self.corrupt_every = corrupt_every
        self.now = 0.0

    def write(self, data: bytes) -> None:
        self.writes += 1
        if self.corrupt_every and self.writes % self.corrupt_every == 0 and data[:2] == b"\xa5\xc3":
            data = data[:20] + bytes([data[20] ^ 0xFF]) + data[21:]
        self.service.feed(data)

    def read(self, timeout: float) -> bytes:
        self.now += timeout
        self.backend.clock_us = int(self.now * 1e6)
        self.service.poll()
        out = b"".join(self.backend.sent)
        self.backend.sent.clear()
        return b"I (5) noise: log line\n" + out if out else out

    def clock(self) -> float:
        return self.now


class LoopTransport:
    """The Loop link as the harness client's transport (nothing to reopen or close in memory)."""

    def __init__(self, link) -> None:
        self.write, self.link = link.write, link

    def read(self, timeout: float) -> bytes:
        data = self.link.read(timeout)  # advances the device clock by `timeout`...
        if not data:
            time.sleep(timeout)  # ...so wait as long, like a port read that times out
        return data

    def reopen(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass


def test_client_runs_every_request_against_the_python_device():
    link = Loop(corrupt_every=3)
    client = ProtocolClient(LoopTransport(link), timeout_s=5.0)
    dut = Dut("sim", client, "esp32p4", "loop", timed=False, latency_label="simulated")
    assert client.call(m.INFO).body["chip"] == "fake"
    result = m.parse_detect(client.detect(20, 30, IMAGE, chunk=500).body)
    assert result.boxes == (m.Box(1, 0.5, 0, 0, 19, 29),) and result.stage_us == {"pre": 10, "model": 20, "post": 30}
    tensors = dut.dump()
    assert list(tensors) == ["images", "score0"] and tensors["score0"][0].tobytes() == bytes([3]) * 5000
    bench = client.call(m.BENCH, warmup=1, runs=4)
    assert [r["model"] for r in bench.records] == [21] * 4
    with pytest.raises(DutReportedError) as err:
        client.call("reboot")
    assert err.value.code == m.E_UNKNOWN
    assert any("noise: log line" in line for line in client.log)


def test_client_reports_a_reboot_during_a_request():
    boot = encode_line(m.boot_record("panic", "a" * 64, "ok", "b" * 64))
    transport = SimpleNamespace(write=lambda data: None, read=lambda timeout: boot, reopen=lambda t: None,
                                close=lambda: None)
    client = ProtocolClient(transport, timeout_s=5.0)
    with pytest.raises(DutRebooted, match="panic"):
        client.call(m.SELFTEST)


class NoisyLoop(Loop):
    """The in-memory link; the first `corrupt` device records that contain `corrupt_pattern` are corrupted."""

    def __init__(self, compute_us: int = 0) -> None:
        super().__init__()
        self.backend.compute_us = compute_us
        self.corrupt_pattern = b""
        self.corrupt = 0

    def read(self, timeout: float) -> bytes:
        self.now += timeout
        self.backend.clock_us = int(self.now * 1e6)
        self.service.poll()
        out = bytearray()
        for line in self.backend.sent:
            if self.corrupt and self.corrupt_pattern and self.corrupt_pattern in line:
                self.corrupt -= 1
                line = line[:12] + bytes([line[12] ^ 0x01]) + line[13:]
            out += line
        self.backend.sent.clear()
        assert self.service.images_held <= 2
        return bytes(out)


def images_for_stream(n: int) -> list:
    import numpy as np

    return [np.full((30 + k, 20 + 2 * k, 3), k * 9, dtype=np.uint8) for k in range(n)]


def test_detect_stream_gives_the_one_at_a_time_results_in_order():
    link = NoisyLoop(compute_us=30_000)
    client = ProtocolClient(LoopTransport(link), timeout_s=5.0)
    dut = Dut("sim", client, "esp32p4", "loop", timed=False, latency_label="simulated")
    assert dut.stream_path == "stream" and dut.info().queue == 2
    images = images_for_stream(6)
    streamed = list(dut.detect_stream(iter(images)))
    one_by_one = [dut.detect(img) for img in images]
    assert [r.boxes for r in streamed] == [r.boxes for r in one_by_one]
    assert [r.width for r in streamed] == [img.shape[1] for img in images]
    assert client.queued == 0 and client.stats.corrupt_records == 0


@pytest.mark.parametrize("pattern", [b'"t":"detect"', b'"t":"ready"', b'"t":"ack"'])
def test_detect_stream_survives_a_corrupted_answer_ready_or_ack(pattern):
    """A lost queued answer is found by the info barrier and its image redone; a lost ready resends the request."""
    link = NoisyLoop(compute_us=30_000)
    client = ProtocolClient(LoopTransport(link), timeout_s=5.0)
    dut = Dut("sim", client, "esp32p4", "loop", timed=False, latency_label="simulated")
    dut.info()
    link.corrupt_pattern, link.corrupt = pattern, 2
    images = images_for_stream(5)
    streamed = list(dut.detect_stream(images))
    assert [r.width for r in streamed] == [img.shape[1] for img in images]
    assert [r.boxes for r in streamed] == [dut.detect(img).boxes for img in images]
    assert client.stats.corrupt_records == 2 and client.queued == 0


def test_consumer_may_use_the_dut_between_streamed_results():
    link = NoisyLoop(compute_us=30_000)
    client = ProtocolClient(LoopTransport(link), timeout_s=5.0)
    dut = Dut("sim", client, "esp32p4", "loop", timed=False, latency_label="simulated")
    images = images_for_stream(5)
    got = []
    for k, result in enumerate(dut.detect_stream(images)):
        got.append(result.width)
        if k == 1:  # a re-detect and a dump while the next image is queued: its answer is kept
            assert dut.detect(images[k]).width == images[k].shape[1]
            assert list(dut.dump()) == ["images", "score0"]
    assert got == [img.shape[1] for img in images] and client.queued == 0


def test_a_device_without_queued_detects_streams_one_at_a_time():
    link = NoisyLoop()
    link.service.limits = Limits(**{**LIMITS.__dict__, "queue": 1})
    client = ProtocolClient(LoopTransport(link), timeout_s=5.0)
    dut = Dut("sim", client, "esp32p4", "loop", timed=False, latency_label="simulated")
    assert dut.stream_path == "one-at-a-time"
    assert [r.width for r in dut.detect_stream(images_for_stream(3))] == [20, 22, 24]
