"""Property tests (hypothesis) of the Python codec: decoders survive any input, uploads survive any link."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.protocol import messages as m
from host.protocol.stream import BadFrame, LogLine, Record, RecordDecoder, RequestDecoder
from host.protocol.upload import UploadReceiver, UploadSender
from host.protocol.wire import (
    MAX_REQUEST_LINE,
    SENTINEL,
    Chunk,
    canonical_json,
    decode_line,
    encode_chunk,
    encode_line,
    float32,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20),
                         st.floats(allow_nan=False, allow_infinity=False, width=32))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
records = st.builds(lambda t, extra: {"t": t, **{k: v for k, v in extra.items() if k != "t"}},
                    st.text(min_size=1, max_size=10), st.dictionaries(st.text(max_size=8), json_values, max_size=5))
# Log text that cannot contain a record start: what the firmware's other output looks like.
log_lines = st.text(st.characters(blacklist_characters="@\n", max_codepoint=0x2FF), max_size=60).map(
    lambda s: s.encode() + b"\n")


def split_feed(decoder, data: bytes, cuts: list[int]) -> list:
    events, pos = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        events += decoder.feed(data[pos:cut])
        pos = max(pos, cut)
    return events


def as_wire_value(value):
    """What a value means after the wire: floats are float32; -0.0 and integral floats read back as ints."""
    if isinstance(value, float):
        return float32(value) + 0.0
    if isinstance(value, list):
        return [as_wire_value(v) for v in value]
    if isinstance(value, dict):
        return {k: as_wire_value(v) for k, v in value.items()}
    return value


@FAST
@given(records)
def test_line_codec_round_trips_every_json_value(body):
    decoded = decode_line(encode_line(body))
    assert as_wire_value(decoded) == as_wire_value(body)
    assert encode_line(decode_line(encode_line(decoded))) == encode_line(decoded)  # stable after one trip


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_float32_wire_numbers_round_trip_exactly(value):
    text = canonical_json(value)
    assert float32(float(text)) == float32(value)


@FAST
@given(st.lists(st.one_of(records, log_lines), max_size=12), st.lists(st.integers(0, 10**6), max_size=8))
def test_record_decoder_finds_exactly_the_records_among_log_lines(items, cuts):
    stream = b"".join(encode_line(i) if isinstance(i, dict) else i for i in items)
    events = split_feed(RecordDecoder(), stream, cuts)
    got = [e.body for e in events if isinstance(e, Record)]
    assert as_wire_value(got) == as_wire_value([i for i in items if isinstance(i, dict)])
    assert all(isinstance(e, (Record, LogLine)) for e in events)


@FAST
@given(st.binary(max_size=3000), st.lists(st.integers(0, 10**6), max_size=8))
def test_decoders_never_raise_and_are_split_invariant(data, cuts):
    for make in (RecordDecoder, RequestDecoder):
        whole = make().feed(data)
        assert split_feed(make(), data, cuts) == whole


@FAST
@given(st.binary(max_size=20000))
def test_request_decoder_memory_stays_bounded(data):
    decoder = RequestDecoder(max_payload=512)
    decoder.feed(data)
    assert len(decoder._buf) <= max(MAX_REQUEST_LINE, 512 + 14)


requests = st.builds(lambda t, i: {"t": t, "id": i}, st.sampled_from(m.REQUEST_TYPES), st.integers(1, 2**31 - 1))
chunks = st.builds(Chunk, st.integers(1, 255), st.integers(0, 2**32 - 1), st.binary(min_size=1, max_size=300))
noise = st.binary(max_size=40).filter(lambda b: b"\xa5" not in b and b"@" not in b)


@FAST
@given(st.lists(st.one_of(requests, chunks, noise), max_size=10), st.lists(st.integers(0, 10**6), max_size=8))
def test_request_decoder_finds_every_frame_between_noise(items, cuts):
    stream = b"".join(m.encode_request(i) if isinstance(i, dict) else encode_chunk(i) if isinstance(i, Chunk)
                      else i for i in items)
    events = split_feed(RequestDecoder(), stream, cuts)
    want = [i for i in items if not isinstance(i, bytes)]
    got = [e.body if isinstance(e, Record) else e for e in events]
    assert got == want


def run_upload(data: bytes, chunk: int, window: int, loss: float, corrupt: float, seed: int):
    """Drive sender and receiver over a FIFO link that drops and corrupts frames and acks."""
    rng = random.Random(seed)
    sender = UploadSender(data, 9, chunk, window, timeout_s=0.5, max_retries=50)
    receiver = UploadReceiver(9, len(data), chunk)
    device, host = RequestDecoder(max_payload=chunk), RecordDecoder()
    now = 0.0
    for _ in range(20000):
        if sender.done:
            break
        for frame in sender.poll(now):
            if rng.random() < loss:
                continue
            if rng.random() < corrupt:
                frame = bytearray(frame)
                frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
            for ev in device.feed(bytes(frame)):
                replies = (receiver.on_chunk(ev) if isinstance(ev, Chunk)
                           else receiver.on_bad_frame(ev.upload_id, ev.seq) if isinstance(ev, BadFrame) else [])
                for reply in replies:
                    if rng.random() < loss:
                        continue
                    for rec in host.feed(encode_line(reply)):
                        if isinstance(rec, Record):
                            sender.on_record(rec.body, now)
        now += 0.1
    return sender, receiver


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=5000), st.integers(1, 700), st.integers(1, 8),
       st.sampled_from([0.0, 0.05, 0.3]), st.sampled_from([0.0, 0.05, 0.3]), st.integers(0, 2**16))
def test_upload_delivers_exact_bytes_over_a_lossy_link(data, chunk, window, loss, corrupt, seed):
    sender, receiver = run_upload(data, chunk, window, loss, corrupt, seed)
    assert sender.done and receiver.complete
    assert bytes(receiver.buffer) == data


def test_clean_link_sends_every_chunk_exactly_once():
    data = bytes(range(256)) * 400
    sender, receiver = run_upload(data, 4096, 16, 0.0, 0.0, 1)
    assert receiver.complete and sender.retransmits == 0
    assert sender.frames_sent == receiver.n


def test_sentinel_is_what_the_spec_says():
    assert SENTINEL == b"@HIL "


def _new_records(backend, seen: int) -> list[dict]:
    events = RecordDecoder().feed(b"".join(backend.sent[seen:]))
    return [e.body for e in events if isinstance(e, Record)]


ops = st.one_of(st.tuples(st.just("queued"), st.integers(0, 3)), st.tuples(st.just("plain"), st.integers(0, 3)),
                st.tuples(st.just("info"), st.just(0)), st.tuples(st.just("tick"), st.integers(0, 200_000)),
                st.tuples(st.just("garbage"), st.integers(0, 2**16)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, max_size=25), st.integers(0, 150_000), st.integers(0, 2**16))
def test_service_with_queued_detects_holds_two_images_and_answers_every_request_once(steps, compute_us, seed):
    """Any mix of queued and plain detects (some uploads damaged or abandoned), other requests, idle time and
    noise: never more than two image buffers, every request answered exactly once, queued answers in order."""
    from host.protocol.device import DeviceService
    from host.protocol.wire import crc32
    from tests.host.protocol.test_protocol_device import IMAGE, LIMITS, FakeBackend

    rng = random.Random(seed)
    backend = FakeBackend(compute_us)
    service = DeviceService(backend, LIMITS)
    kinds: dict[int, str] = {}
    for n, (op, arg) in enumerate(steps, start=1):
        before = len(backend.sent)
        if op in ("queued", "plain"):
            fields = dict(w=20, h=30, fmt="rgb888", size=len(IMAGE), crc=crc32(IMAGE), chunk=500)
            if op == "queued":
                fields["queue"] = True
            service.feed(m.encode_request(m.request(m.DETECT, n, **fields)))
            kinds[n] = m.DETECT
            ready = [b for b in _new_records(backend, before) if b["t"] == m.READY and b["id"] == n]
            for s in range(4) if ready else ():
                frame = bytearray(encode_chunk(Chunk(ready[0]["up"], s, IMAGE[s * 500:(s + 1) * 500])))
                if arg == 3 and s == 2:
                    continue  # a lost chunk: the upload stalls (and times out, or is aborted)
                if arg == 2 and s == 1:
                    frame[rng.randrange(len(frame))] ^= 0x10
                service.feed(bytes(frame))
                backend.clock_us += 2000
                service.poll()
        elif op == "info":
            service.feed(m.encode_request(m.request(m.INFO, n)))
            kinds[n] = m.INFO
        elif op == "tick":
            backend.clock_us += arg
            service.poll()
        else:
            service.feed(random.Random(arg).randbytes(40).replace(b"@", b"").replace(b"\xa5", b""))
        assert service.images_held <= 2
    service.feed(m.encode_request(m.request(m.INFO, 10_000)))  # waits for every queued detect
    backend.clock_us += 10**7
    service.poll()
    kinds[10_000] = m.INFO
    assert service.images_held <= 1 and not service.computing
    finals: dict[int, list[str]] = {}
    detect_order = []
    for body in RecordDecoder().feed(b"".join(backend.sent)):
        b = body.body
        if b.get("id") in kinds and b["t"] in (m.ERROR, kinds[b["id"]]):
            finals.setdefault(b["id"], []).append(b["t"])
            if b["t"] == m.DETECT:
                detect_order.append(b["id"])
    assert {i: len(v) for i, v in finals.items()} == {i: 1 for i in kinds}
    assert detect_order == sorted(detect_order)
