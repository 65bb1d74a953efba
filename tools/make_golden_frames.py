#!/usr/bin/env python3
"""Regenerate fixtures/protocol: golden protocol frames that the Python and C++ codecs are tested against.

Deterministic: the same codec gives the same bytes, so `git diff fixtures/protocol` after a run
shows exactly which frames a codec change altered. Each golden is one file of raw wire bytes plus
an entry in golden.json with its kind, its decoded structure and its sha256. The C++ test
(firmware/components/hil_protocol/test/test_main.cpp) builds the same records with the same values.

Usage: python tools/make_golden_frames.py [--out fixtures/protocol] [--check]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host.protocol import messages as m  # noqa: E402
from host.protocol.stream import BadFrame, BadRecord, LogLine, Record, RecordDecoder, RequestDecoder  # noqa: E402
from host.protocol.wire import Chunk, decode_line, encode_chunk, encode_line  # noqa: E402

SHA_A = "a3" * 32
SHA_B = "5e" * 32
SHA_C = "0f" * 32


def pattern(n: int, mul: int = 7, add: int = 3) -> bytes:
    return bytes((i * mul + add) & 0xFF for i in range(n))


def goldens() -> list[tuple[str, str, Any]]:
    """(name, kind, value) for every golden; kind is request, record or chunk."""
    image = pattern(640 * 480 * 3, 13, 1)
    small_image = pattern(320 * 240 * 3, 5, 9)
    dump_data = pattern(40, 11, 250)
    out: list[tuple[str, str, Any]] = [
        ("req_info", "request", m.request(m.INFO, 1)),
        ("req_selftest", "request", m.request(m.SELFTEST, 2)),
        ("req_detect", "request", m.detect_request(3, 640, 480, image, chunk=4096, window=16, score_thr=0.25,
                                                   nms_thr=0.7, top_k=10)),
        ("req_dump", "request", m.request(m.DUMP, 4)),
        ("req_bench", "request", m.bench_request(5, 2, 10)),
        ("req_profile", "request", m.request(m.PROFILE, 6)),
        # protocol 2: a queued detect (uploads while the previous queued image computes)
        ("req_detect_queue", "request", m.detect_request(7, 320, 240, small_image, chunk=4096, window=16,
                                                         score_thr=0.25, nms_thr=0.7, top_k=10, queue=True)),
        ("rec_boot", "record", m.boot_record("poweron", SHA_A, "ok", SHA_B)),
        ("rec_info", "record", m.info_record(
            1, chip="esp32p4", rev=100, cores=2, idf="v5.5.1", espdl="3.3.9", app_version="0.1.0",
            app_sha256=SHA_A, model_state="ok", model_name="yolo11n.espdl", model_sha256=SHA_B,
            pack_sha256=SHA_C, inputs=[m.tensor_info("images", [1, 640, 640, 3], -7)],
            outputs=[m.tensor_info("box0", [1, 80, 80, 64], -3), m.tensor_info("score0", [1, 80, 80, 80], -2)],
            heap={"internal_free": 401232, "internal_min": 380000, "internal_largest": 245760,
                  "spiram_free": 25165824, "spiram_min": 18000000, "spiram_largest": 16777216},
            max_image=1228800, chunk_max=8192, win_max=16, queue=2, console="uart", selftest="pass")),
        ("rec_ready", "record", m.ready_record(3, 17, 4096, 16, 225)),
        ("rec_ack", "record", m.ack_record(17, 42)),
        ("rec_nak", "record", m.nak_record(17, 7)),
        ("rec_detect", "record", m.detect_record(3, 640, 480, [
            m.Box(0, 0.893309832, 12, 40, 300, 470),
            m.Box(5, 0.320821315, 0, 0, 639, 479),
            m.Box(79, 1.0, 1, 2, 3, 4),
            m.Box(2, 1.0e-5, 100, 101, 102, 103)], 15873, 2535301, 14210, 4712345)),
        ("rec_tensor", "record", m.tensor_record(4, "score0", "int8", [1, 2, 4, 5], -2, dump_data)),
        ("rec_part", "record", m.part_records(4, "score0", dump_data)[0]),
        ("rec_dump", "record", m.dump_record(4, ["images", "box0", "score0"])),
        ("rec_run", "record", m.run_record(5, 0, 15980, 2535410, 14333)),
        ("rec_bench", "record", m.bench_record(5, 2, 10)),
        ("rec_layer", "record", m.layer_record(6, 0, '/model.0/conv/Conv "q"\\', "Conv", 51234)),
        ("rec_profile", "record", m.profile_record(6, 249, 2541000)),
        ("rec_selftest", "record", m.selftest_record(2, True, 2600123)),
        ("rec_error", "record", m.error_record(0, m.E_BAD_CRC, "request CRC mismatch\n(\u00b5C \u20ac)\t\x01")),
        # what both services answer to a third queued upload while two images are held
        ("rec_error_busy", "record", m.error_record(8, m.E_BUSY, "the device holds 2 queued images (its queue is 2): "
                                                                 "wait for a detect answer before the next upload")),
        ("chunk_small", "chunk", {"up": 17, "seq": 3, "flags": 0, "payload_hex": pattern(48).hex()}),
        ("chunk_last", "chunk", {"up": 255, "seq": 299, "flags": 0, "payload_hex": pattern(5, 1, 0xFD).hex()}),
    ]
    return out


def encode(kind: str, value: Any) -> bytes:
    if kind == "chunk":
        return encode_chunk(Chunk(value["up"], value["seq"], bytes.fromhex(value["payload_hex"]), value["flags"]))
    return m.encode_request(value) if kind == "request" else encode_line(value)


def event_json(event: Any) -> dict[str, Any]:
    """Events as plain JSON, the form the C++ test prints too."""
    if isinstance(event, Record):
        return {"event": "record", "body": event.body}
    if isinstance(event, Chunk):
        return {"event": "chunk", "up": event.upload_id, "seq": event.seq, "payload_hex": event.payload.hex()}
    if isinstance(event, BadFrame):
        return {"event": "bad", "up": event.upload_id, "seq": event.seq}
    if isinstance(event, LogLine):
        return {"event": "log", "text_b64": base64.b64encode(event.text).decode()}
    if isinstance(event, BadRecord):
        return {"event": "bad_record", "raw_b64": base64.b64encode(event.raw).decode()}
    raise TypeError(event)


def streams(frames: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    """Mixed streams with noise and corruption; the expected events are what the decoders must say."""
    bad_chunk = bytearray(frames["chunk_small"])
    bad_chunk[20] ^= 0x40
    bad_req = bytearray(frames["req_bench"])
    bad_req[12] ^= 0x01
    device = (b"\x00\xff noise @HI" + frames["req_info"] + b"\xa5" + frames["chunk_small"] + bytes(bad_chunk)
              + bytes(bad_req) + frames["req_detect"][:30] + frames["chunk_last"] + b"@HIL {}\n"
              + frames["req_dump"] + frames["req_detect_queue"])
    bad_rec = bytearray(frames["rec_ack"])
    bad_rec[15] ^= 0x02
    host = (b"ESP-ROM:esp32p4-eco2-20240710\r\nI (25) boot: ESP-IDF v5.5.1\r\n" + frames["rec_boot"]
            + b"I (1234) dl::Model: partial line " + frames["rec_ready"] + bytes(bad_rec)
            + frames["rec_ack"].replace(b"\n", b"\r\n") + b"W (99) x: y\n" + frames["rec_detect"])
    return [("stream_device", "device_stream", device), ("stream_host", "host_stream", host)]


def build(out_dir: Path) -> dict[str, bytes]:
    """Return {file name: content} for the whole fixture directory."""
    files: dict[str, bytes] = {}
    entries = []
    frames: dict[str, bytes] = {}
    for name, kind, value in goldens():
        data = encode(kind, value)
        if kind != "chunk":
            value = decode_line(data)  # the structure exactly as a decoder yields it (float32 spellings)
        frames[name] = data
        files[f"{name}.bin"] = data
        entries.append({"name": name, "kind": kind, "file": f"{name}.bin",
                        "sha256": hashlib.sha256(data).hexdigest(), "value": value})
    for name, kind, data in streams(frames):
        decoder = RequestDecoder() if kind == "device_stream" else RecordDecoder()
        events = decoder.feed(data)
        if kind == "host_stream":
            events += decoder.flush()
        files[f"{name}.bin"] = data
        entries.append({"name": name, "kind": kind, "file": f"{name}.bin",
                        "sha256": hashlib.sha256(data).hexdigest(), "events": [event_json(e) for e in events]})
    manifest = {"protocol": m.PROTOCOL_VERSION, "generator": "tools/make_golden_frames.py", "frames": entries}
    files["golden.json"] = (json.dumps(manifest, indent=1, ensure_ascii=True) + "\n").encode()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "fixtures" / "protocol")
    parser.add_argument("--check", action="store_true", help="fail if the fixture differs instead of writing")
    args = parser.parse_args(argv)
    files = build(args.out)
    if args.check:
        stale = [n for n, d in files.items() if not (args.out / n).is_file() or (args.out / n).read_bytes() != d]
        if stale:
            print("stale golden files: " + ", ".join(sorted(stale)), file=sys.stderr)
            return 1
        print(f"{len(files)} golden files up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
