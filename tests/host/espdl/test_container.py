"""EDL2 and PDL3 containers: layouts as esp-dl's loader reads them, integrity checks, clear errors."""

from __future__ import annotations

import hashlib
import struct

import pytest

from host.errors import HarnessError
from host.espdl import container

PAYLOAD = bytes(range(256)) * 3 + b"tail"


def test_edl2_header_layout_and_roundtrip():
    blob = container.write_edl2(PAYLOAD)
    assert blob[:4] == b"EDL2"
    assert struct.unpack_from("<III", blob, 4) == (0, len(PAYLOAD), 0)
    edl = container.read_edl2(blob + bytes(12))  # padding after the payload (as inside PDL3) is allowed
    assert not edl.encrypted and edl.payload == PAYLOAD


def test_encrypted_edl2_needs_the_key():
    key = bytes(range(16))
    blob = container.write_edl2(PAYLOAD, key=key)
    assert struct.unpack_from("<I", blob, 4)[0] == 1
    assert blob[16:] != PAYLOAD  # really encrypted
    with pytest.raises(HarnessError, match="encrypted.*key"):
        container.read_edl2(blob)
    assert container.read_edl2(blob, key=key).payload == PAYLOAD


def test_aes_ctr_uses_esp_dl_counter_block():
    # esp-dl's fbs_aes_crypt_ctr starts the counter at bytes 0x10..0x1F
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes(range(100, 116))
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(range(16, 32)))).encryptor()
    assert container.aes_ctr(PAYLOAD, key) == enc.update(PAYLOAD) + enc.finalize()


@pytest.mark.parametrize("blob, message", [
    (b"EDL", "shorter than its 16-byte header"),
    (b"EDL2" + struct.pack("<III", 0, 1000, 0) + b"x" * 10, "length field says 1000"),
    (b"EDL2" + struct.pack("<III", 7, 0, 0), "mode field is 7"),
    (b"ONNX" + bytes(40), "not a .espdl file"),
    (b"PDL2" + bytes(40), "old .espdl container"),
])
def test_bad_edl2_headers_are_named(blob, message):
    with pytest.raises(HarnessError, match=message):
        container.read_edl2(blob)


def _models():
    return {"first.espdl": container.write_edl2(PAYLOAD), "second": container.write_edl2(b"\x01" * 33)}


def test_pdl3_layout_matches_esp_dl_loader():
    models = _models()
    data = container.write_pdl3(models, version="v2.5")
    assert data[:4] == b"PDL3"
    assert data[4:20] == b"v2.5" + bytes(12)
    size, = struct.unpack_from("<I", data, 20)
    count, = struct.unpack_from("<I", data, 56)
    assert size == len(data) and count == 2
    zeroed = data[:24] + bytes(32) + data[56:]
    assert data[24:56] == hashlib.sha256(zeroed).digest()
    for i, (name, blob) in enumerate(models.items()):
        off, name_off, name_len = struct.unpack_from("<III", data, 60 + 12 * i)
        assert off % 16 == 0
        assert data[name_off:name_off + name_len].decode() == name
        assert data[off:off + len(blob)] == blob
    assert container.detect_format(data) == "PDL3"


def test_pdl3_roundtrip_and_lookup():
    models = _models()
    pack = container.read_pdl3(container.write_pdl3(models))
    assert pack.names() == list(models)
    for name, blob in models.items():
        got = pack.get(name)
        assert got[:len(blob)] == blob and len(got) % 16 == 0 and not any(got[len(blob):])
        assert container.read_edl2(got).payload == container.read_edl2(blob).payload
    with pytest.raises(HarnessError, match="no model named 'third'"):
        pack.get("third")


def test_pdl3_sha_mismatch_and_truncation_are_refused():
    data = bytearray(container.write_pdl3(_models()))
    data[-3] ^= 0xFF
    with pytest.raises(HarnessError, match="sha256 does not match"):
        container.read_pdl3(bytes(data))
    assert container.read_pdl3(bytes(data), verify=False).names() == ["first.espdl", "second"]
    good = container.write_pdl3(_models())
    with pytest.raises(HarnessError, match="truncated"):
        container.read_pdl3(good[:-20])
    with pytest.raises(HarnessError, match="shorter than its 60-byte header"):
        container.read_pdl3(good[:40])


def test_pdl3_refuses_bad_members_and_versions():
    with pytest.raises(HarnessError, match="at least one model"):
        container.write_pdl3({})
    with pytest.raises(HarnessError, match="15 characters"):
        container.write_pdl3(_models(), version="a-very-long-version-string")
    with pytest.raises(HarnessError, match="not a .espdl file"):
        container.write_pdl3({"x": b"garbage-garbage-garbage"})
