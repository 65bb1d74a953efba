"""The Python codec against the golden frames in fixtures/protocol (the C++ codec meets the same files)."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from host.protocol import messages as m
from host.protocol.stream import BadFrame, BadRecord, Record, RecordDecoder, RequestDecoder
from host.protocol.wire import Chunk, WireError, decode_chunk, decode_line, encode_chunk, encode_line
from tests.host.builders import corruptions

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "fixtures" / "protocol"
MANIFEST = json.loads((FIXTURES / "golden.json").read_text())
FRAMES = [f for f in MANIFEST["frames"] if f["kind"] in ("request", "record", "chunk")]
STREAMS = [f for f in MANIFEST["frames"] if f["kind"].endswith("_stream")]


def _bytes(entry: dict) -> bytes:
    return (FIXTURES / entry["file"]).read_bytes()


def _encode(entry: dict) -> bytes:
    value = entry["value"]
    if entry["kind"] == "chunk":
        return encode_chunk(Chunk(value["up"], value["seq"], bytes.fromhex(value["payload_hex"]), value["flags"]))
    if entry["kind"] == "request":
        return m.encode_request(value)
    return encode_line(value)


def test_fixture_is_what_the_generator_writes():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_golden_frames.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_request_and_record_type_has_a_golden():
    kinds = {f["value"]["t"] for f in FRAMES if f["kind"] != "chunk"}
    assert set(m.REQUEST_TYPES) <= kinds
    assert {m.BOOT, m.READY, m.ACK, m.NAK, m.TENSOR, m.PART, m.RUN, m.LAYER, m.ERROR} <= kinds


@pytest.mark.parametrize("entry", FRAMES, ids=[f["name"] for f in FRAMES])
def test_encode_reproduces_golden_bytes(entry):
    assert _encode(entry) == _bytes(entry)


@pytest.mark.parametrize("entry", FRAMES, ids=[f["name"] for f in FRAMES])
def test_decode_gives_golden_structure(entry):
    data = _bytes(entry)
    if entry["kind"] == "chunk":
        chunk = decode_chunk(data)
        value = entry["value"]
        assert (chunk.upload_id, chunk.seq, chunk.payload.hex()) == (value["up"], value["seq"], value["payload_hex"])
        assert RequestDecoder().feed(data) == [chunk]
    else:
        assert decode_line(data) == entry["value"]
        if entry["kind"] == "request":
            assert RequestDecoder().feed(data) == [Record(entry["value"], data)]
        else:
            assert RecordDecoder().feed(data) == [Record(entry["value"], data)]


@pytest.mark.parametrize("entry", FRAMES, ids=[f["name"] for f in FRAMES])
def test_corrupted_golden_is_rejected(entry):
    data = _bytes(entry)
    for pos, bad in corruptions(data):
        if entry["kind"] == "chunk":
            with pytest.raises(WireError):
                decode_chunk(bad)
            events = RequestDecoder().feed(bad)
            assert not any(isinstance(e, Chunk) for e in events), pos
        else:
            with pytest.raises(WireError):
                decode_line(bad)
            decoder = RequestDecoder() if entry["kind"] == "request" else RecordDecoder()
            events = decoder.feed(bad + b"\n")
            assert not any(isinstance(e, Record) for e in events), pos
            if entry["kind"] == "record" and pos >= 5:  # past the sentinel: seen as a broken record
                assert any(isinstance(e, BadRecord) for e in events), pos


def _event_json(event) -> dict:
    from tools.make_golden_frames import event_json

    return event_json(event)


@pytest.mark.parametrize("entry", STREAMS, ids=[f["name"] for f in STREAMS])
def test_stream_golden_gives_expected_events_for_any_split(entry):
    data = _bytes(entry)
    rng = random.Random(5)
    for trial in range(20):
        decoder = RequestDecoder() if entry["kind"] == "device_stream" else RecordDecoder()
        events, pos = [], 0
        while pos < len(data):
            step = 1 if trial == 0 else rng.randint(1, 300)
            events += decoder.feed(data[pos:pos + step])
            pos += step
        if isinstance(decoder, RecordDecoder):
            events += decoder.flush()
        got = [_event_json(e) for e in events]
        if entry["kind"] == "host_stream":  # log text may be cut differently; records may not
            got = [e for e in got if e["event"] != "log"]
            want = [e for e in entry["events"] if e["event"] != "log"]
        else:
            want = entry["events"]
        assert got == want, f"trial {trial}"


def test_host_stream_keeps_log_text():
    entry = next(f for f in STREAMS if f["kind"] == "host_stream")
    events = RecordDecoder().feed(_bytes(entry))
    text = b"".join(base64.b64decode(e["text_b64"]) for e in entry["events"] if e["event"] == "log")
    assert b"ESP-ROM:esp32p4" in text and b"partial line " in text
    assert sum(isinstance(e, BadRecord) for e in events) == 1


def test_request_over_the_line_limit_is_refused_by_the_encoder():
    with pytest.raises(WireError):
        m.encode_request(m.request(m.INFO, 1, pad="x" * 2000))


def test_device_stream_golden_flags_the_corrupted_chunk_with_its_header():
    entry = next(f for f in STREAMS if f["kind"] == "device_stream")
    bad = [e for e in RequestDecoder().feed(_bytes(entry)) if isinstance(e, BadFrame)]
    assert (bad[0].upload_id, bad[0].seq) == (17, 3)
