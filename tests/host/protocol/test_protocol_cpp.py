"""The firmware's C++ protocol component, compiled natively: unit tests, golden frames, parity, fuzzing.

Needs g++ (or c++) and cmake; the fuzz test needs clang with libFuzzer. CI installs them with
`apt-get install -y g++ cmake ninja-build clang` (see docs/ci-examples).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.protocol import messages as m
from host.protocol.stream import RequestDecoder
from host.protocol.wire import Chunk, encode_chunk
from tests.host.builders import corruptions

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "fixtures" / "protocol"
MANIFEST = json.loads((FIXTURES / "golden.json").read_text())



def _run(binary: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="halt_on_error=1")
    return subprocess.run([str(binary), *args], capture_output=True, text=True, env=env, timeout=120)


def _decode_files(binary: Path, paths: list[Path]) -> list[list[dict]]:
    result = _run(binary, "decode", *map(str, paths))
    assert result.returncode == 0, result.stderr
    blocks: list[list[dict]] = []
    for line in result.stdout.splitlines():
        item = json.loads(line)
        if "file" in item:
            blocks.append([])
        else:
            blocks[-1].append(item)
    assert len(blocks) == len(paths)
    return blocks


def _python_events(data: bytes) -> list[dict]:
    out = []
    for ev in RequestDecoder().feed(data):
        if isinstance(ev, Chunk):
            out.append({"event": "chunk", "up": ev.upload_id, "seq": ev.seq, "payload_hex": ev.payload.hex()})
        elif hasattr(ev, "body"):
            out.append({"event": "record", "body": ev.body})
        else:
            out.append({"event": "bad", "up": ev.upload_id, "seq": ev.seq})
    return out


def _comparable(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("parsed", "t")} for e in events]


def test_unit_checks_pass_under_sanitizers(cpp_test):
    result = _run(cpp_test, "unit")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


def test_cpp_encoder_reproduces_every_golden_record_and_chunk(cpp_test):
    result = _run(cpp_test, "encode", str(FIXTURES))
    assert result.returncode == 0, result.stdout + result.stderr
    checked = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("ok ")}
    goldens = {f["name"] for f in MANIFEST["frames"] if f["kind"] in ("record", "chunk")}
    assert checked == goldens


def test_cpp_decoder_gives_golden_structures(cpp_test):
    entries = [f for f in MANIFEST["frames"] if f["kind"] in ("request", "chunk", "device_stream")]
    blocks = _decode_files(cpp_test, [FIXTURES / f["file"] for f in entries])
    for entry, events in zip(entries, blocks):
        if entry["kind"] == "request":
            assert events == [{"event": "record", "parsed": True, "t": entry["value"]["t"], "body": entry["value"]}]
        elif entry["kind"] == "chunk":
            v = entry["value"]
            assert events == [{"event": "chunk", "up": v["up"], "seq": v["seq"], "payload_hex": v["payload_hex"]}]
        else:
            assert _comparable(events) == entry["events"]


def test_cpp_decoder_rejects_corrupted_goldens(cpp_test, tmp_path):
    paths, kinds = [], []
    for entry in MANIFEST["frames"]:
        if entry["kind"] not in ("request", "chunk"):
            continue
        data = (FIXTURES / entry["file"]).read_bytes()
        for pos, bad in corruptions(data, limit=24):
            path = tmp_path / f"{entry['name']}_{pos}.bin"
            path.write_bytes(bad + b"\n")
            paths.append(path)
            kinds.append("chunk" if entry["kind"] == "chunk" else "record")
    for path, kind, events in zip(paths, kinds, _decode_files(cpp_test, paths)):
        assert not any(e["event"] == kind for e in events), path.name


frames = st.one_of(
    st.builds(lambda t, i: m.encode_request({"t": t, "id": i}), st.sampled_from(m.REQUEST_TYPES),
              st.integers(1, 2**31 - 1)),
    st.builds(lambda u, s, p: encode_chunk(Chunk(u, s, p)), st.integers(1, 255), st.integers(0, 2**32 - 1),
              st.binary(min_size=1, max_size=200)),
    st.binary(max_size=30))


@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(frames, st.integers(0, 3), st.integers(0, 10**6)), max_size=12),
                min_size=60, max_size=60))
def test_cpp_and_python_decoders_agree_on_noisy_streams(cpp_test, tmp_path, streams):
    """Differential test: 60 random streams of frames, noise and bit flips through both decoders."""
    paths, datas = [], []
    for k, items in enumerate(streams):
        data = bytearray()
        for frame, flips, where in items:
            frame = bytearray(frame)
            for f in range(flips if frame else 0):
                frame[(where + 7 * f) % len(frame)] ^= 1 << (f % 8)
            data += frame
        path = tmp_path / f"s{k}.bin"
        path.write_bytes(bytes(data))
        paths.append(path)
        datas.append(bytes(data))
    for data, events in zip(datas, _decode_files(cpp_test, paths)):
        assert _comparable(events) == _python_events(data)


def _without_inherited_peak_rss(argv: list[str]) -> list[str]:
    """argv run from a forked child of a small shell, so -rss_limit_mb measures the fuzzer alone.

    libFuzzer's RSS limit checks the *peak* RSS (getrusage ru_maxrss), and Linux carries the peak
    of the process that exec()s into the new program: a fuzzer started straight from a pytest that
    has loaded torch starts at the pytest's ~1.2 GB and is killed as out-of-memory on its first
    input. A fork()ed process starts its peak afresh at its parent's current RSS, so a small shell in
    between gives the fuzzer a clean measure (`; exit` keeps dash/bash from exec()ing the last
    command in place of forking). Started this way the fuzzer begins at ~30 MB and stays near
    ~200 MB, nearly all of it AddressSanitizer's bounded quarantine of freed blocks.
    """
    return ["sh", "-c", '"$@"; exit $?', "sh", *argv]


def test_libfuzzer_finds_no_crash_hang_or_leak(tmp_path, cmake_builder):
    if not shutil.which("clang++") or not shutil.which("cmake"):
        pytest.skip("clang++ not installed (apt-get install -y clang): libFuzzer target not run")
    build = tmp_path / "fuzz_build"
    result = cmake_builder(build, "-DCMAKE_CXX_COMPILER=clang++", "-DHIL_FUZZ=ON", "-DHIL_SANITIZE=OFF",
                          target="hil_protocol_fuzz")
    if result.returncode != 0 and "fsanitize=fuzzer" in result.stdout + result.stderr:
        pytest.skip("clang has no libFuzzer runtime (install the clang compiler-rt package)")
    assert result.returncode == 0, result.stdout + result.stderr
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = random.Random(0)
    for i, entry in enumerate(f for f in MANIFEST["frames"] if f["kind"] in ("request", "chunk", "device_stream")):
        (corpus / f"seed{i}").write_bytes(bytes([rng.randrange(256), rng.randrange(256)])
                                          + (FIXTURES / entry["file"]).read_bytes())
    fuzz = [str(build / "hil_protocol_fuzz"), "-max_total_time=15", "-timeout=5", "-rss_limit_mb=512",
            "-malloc_limit_mb=256", "-max_len=8192", str(corpus)]
    run = subprocess.run(_without_inherited_peak_rss(fuzz), capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done" in run.stderr
