"""Hostile or damaged files: the reader raises HarnessError (a clear message), never crashes or hangs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.errors import HarnessError
from host.espdl import container, load_bytes

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def valid(quantized) -> bytes:
    return quantized.get("eltwise", "esp32p4").read_bytes()


def _load(data: bytes) -> None:
    try:
        load_bytes(data)
    except HarnessError:
        pass


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data):
    _load(data)
    _load(b"EDL2" + data)
    _load(b"PDL3" + data)


@FUZZ
@given(st.binary(min_size=1, max_size=2048))
def test_random_flatbuffers_payloads(payload):
    _load(container.write_edl2(payload))


@FUZZ
@given(data=st.data())
def test_mutated_valid_file(valid, data):
    blob = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 12))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    _load(bytes(blob))


@FUZZ
@given(data=st.data())
def test_mutated_flatbuffer_offsets(valid, data):
    """Overwrite 32-bit words inside the FlatBuffers payload: offsets and lengths become hostile."""
    blob = bytearray(valid)
    pos = 16 + 4 * data.draw(st.integers(0, (len(blob) - 20) // 4))
    blob[pos:pos + 4] = data.draw(st.sampled_from([b"\xff\xff\xff\x7f", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80",
                                                   b"\x00\x00\x00\x00", b"\x10\x00\x00\x00"]))
    _load(bytes(blob))


@FUZZ
@given(cut=st.integers(0, 4000))
def test_truncated_valid_file(valid, cut):
    with pytest.raises(HarnessError):
        load_bytes(valid[: max(0, len(valid) - 1 - cut * 7)])


@FUZZ
@given(keep=st.integers(8, 100_000))
def test_truncated_payload_with_consistent_header(valid, keep):
    """A truncated FlatBuffers payload behind a header whose length field agrees with it."""
    payload = container.read_edl2(valid).payload
    _load(container.write_edl2(payload[: min(keep, len(payload) - 1)]))
    _load(container.write_edl2(payload[-min(keep, len(payload) - 1):]))


@FUZZ
@given(data=st.data())
def test_mutated_pdl3(valid, data):
    pack = bytearray(container.write_pdl3({"a": valid, "b": valid}))
    pos = data.draw(st.integers(0, 200))
    pack[pos] = data.draw(st.integers(0, 255))
    for name in ("a", "b", None):
        try:
            load_bytes(bytes(pack), name=name)
        except HarnessError:
            pass


def test_valid_file_still_loads(valid):
    assert load_bytes(valid).nodes
