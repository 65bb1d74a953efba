"""The .espdl containers: EDL2 (one model, optionally AES-128-CTR encrypted) and PDL3 (a package of models).

Layouts as esp-dl's loader (fbs_loader.cpp) and packer (pack_espdl_models.py) define them:
- EDL2: b"EDL2", u32 mode (0 plain, 1 AES-128-CTR), u32 payload length, u32 reserved, payload.
  The CTR counter block starts at bytes 0x10..0x1F (esp-dl and esp-ppq both fix it).
- PDL3: b"PDL3", char[16] version, u32 package size, sha256[32] of the package with this field zeroed,
  u32 model count, then per model {u32 data offset, u32 name offset, u32 name length}, the names,
  zero padding to 16, and each EDL2 blob padded to a multiple of 16 bytes.
All integers are little-endian (the chips are).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from host.errors import HarnessError

EDL2_MAGIC = b"EDL2"
PDL3_MAGIC = b"PDL3"
EDL2_HEADER = 16
PDL3_HEADER = 60
PDL3_SHA_OFFSET = 24
PDL3_VERSION_MAX = 15
_CTR_NONCE = bytes(range(0x10, 0x20))


class ContainerError(HarnessError):
    """A .espdl or PDL3 file whose container (header, lengths, digest) is wrong."""


def detect_format(data: bytes) -> str:
    """'EDL2' or 'PDL3'; anything else is refused with what was found."""
    magic = bytes(data[:4])
    if magic in (EDL2_MAGIC, PDL3_MAGIC):
        return magic.decode()
    if magic in (b"EDL1", b"PDL1", b"PDL2"):
        raise ContainerError(
            f"{magic.decode()} is an old .espdl container this harness does not read; "
            "re-export the model with esp-ppq >= 1.0 (EDL2) or repack it with `python -m host espdl pack`"
        )
    raise ContainerError(
        f"not a .espdl file: magic bytes {magic!r}, expected b'EDL2' or b'PDL3'; check the path "
        "(a .onnx or .pt must be quantized first with `python -m host quantize`)"
    )


def aes_ctr(data: bytes, key: bytes) -> bytes:
    """AES-128-CTR with esp-dl's fixed counter block; the same call encrypts and decrypts."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if len(key) != 16:
        raise ContainerError(f"AES key must be 16 bytes, got {len(key)}; pass the 128-bit key esp-ppq printed")
    cipher = Cipher(algorithms.AES(bytes(key)), modes.CTR(_CTR_NONCE))
    op = cipher.encryptor()
    return op.update(bytes(data)) + op.finalize()


@dataclass(frozen=True)
class Edl2:
    """A parsed EDL2 header and its (decrypted, when a key was given) FlatBuffers payload."""

    encrypted: bool
    payload: bytes


def edl2_header(data: bytes) -> tuple[bool, int]:
    """(encrypted, payload length) from a checked EDL2 header."""
    if len(data) < EDL2_HEADER:
        raise ContainerError(f"EDL2 file of {len(data)} bytes is shorter than its 16-byte header: truncated file")
    magic, mode, size, _ = struct.unpack_from("<4sIII", data, 0)
    if magic != EDL2_MAGIC:
        detect_format(data)
        raise ContainerError(f"expected an EDL2 model, found {magic!r}")
    if mode not in (0, 1):
        raise ContainerError(f"EDL2 mode field is {mode}, expected 0 (plain) or 1 (AES): damaged header")
    if size > len(data) - EDL2_HEADER:
        raise ContainerError(
            f"EDL2 length field says {size} payload bytes but only {len(data) - EDL2_HEADER} follow: "
            "the file is truncated or its header is damaged; copy the file again or re-export it with "
            "`python -m host quantize`"
        )
    return mode == 1, size


def read_edl2(data: bytes, key: bytes | None = None) -> Edl2:
    """Split an EDL2 blob into header facts and payload; trailing padding (as in PDL3) is allowed."""
    encrypted, size = edl2_header(data)
    payload = bytes(data[EDL2_HEADER : EDL2_HEADER + size])
    if encrypted:
        if key is None:
            raise ContainerError(
                "this .espdl is AES-128-CTR encrypted; pass its 16-byte key (hex) with --key, "
                "the one esp-ppq printed when it exported the model"
            )
        payload = aes_ctr(payload, key)
    return Edl2(encrypted=encrypted, payload=payload)


def write_edl2(payload: bytes, key: bytes | None = None) -> bytes:
    """Wrap a FlatBuffers model in an EDL2 header, encrypting it when a key is given."""
    body = aes_ctr(payload, key) if key is not None else bytes(payload)
    return struct.pack("<4sIII", EDL2_MAGIC, 1 if key is not None else 0, len(body), 0) + body


@dataclass(frozen=True)
class PackEntry:
    name: str
    offset: int
    data: bytes  # the EDL2 blob including its padding to 16 bytes


@dataclass(frozen=True)
class Pdl3:
    version: str
    size: int
    sha256: bytes
    models: tuple[PackEntry, ...]

    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(self, name: str) -> bytes:
        for m in self.models:
            if m.name == name:
                return m.data
        raise ContainerError(f"no model named {name!r} in this PDL3 package; it holds {self.names()}")


def pdl3_digest(data: bytes, size: int) -> bytes:
    """sha256 of the first `size` bytes with the digest field counted as zeros."""
    h = hashlib.sha256()
    h.update(bytes(data[:PDL3_SHA_OFFSET]))
    h.update(bytes(32))
    h.update(bytes(data[PDL3_SHA_OFFSET + 32 : size]))
    return h.digest()


def read_pdl3(data: bytes, verify: bool = True) -> Pdl3:
    """Parse a PDL3 package; with `verify` the stored sha256 must match the content."""
    if len(data) < PDL3_HEADER:
        raise ContainerError(f"PDL3 file of {len(data)} bytes is shorter than its 60-byte header: truncated file")
    magic, version, size, digest, count = struct.unpack_from("<4s16sI32sI", data, 0)
    if magic != PDL3_MAGIC:
        detect_format(data)
        raise ContainerError(f"expected a PDL3 package, found {magic!r}")
    if size > len(data) or size < PDL3_HEADER:
        raise ContainerError(
            f"PDL3 size field says {size} bytes but the file has {len(data)}: truncated or damaged package"
        )
    if count > (size - PDL3_HEADER) // 12:
        raise ContainerError(f"PDL3 model count {count} cannot fit in a {size}-byte package: damaged header")
    if verify and pdl3_digest(data, size) != digest:
        raise ContainerError(
            "PDL3 package sha256 does not match its content: the package is damaged; rebuild it with "
            "`python -m host espdl pack` or copy it again"
        )
    entries = []
    for i in range(count):
        off, name_off, name_len = struct.unpack_from("<III", data, PDL3_HEADER + 12 * i)
        if name_off + name_len > size or off + EDL2_HEADER > size:
            raise ContainerError(f"PDL3 entry {i} points outside the package: damaged header")
        try:
            name = bytes(data[name_off : name_off + name_len]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContainerError(f"PDL3 entry {i} name is not UTF-8: damaged header") from exc
        _, _, payload_len, _ = struct.unpack_from("<4sIII", data, off)
        end = min(size, off + EDL2_HEADER + payload_len + (-(EDL2_HEADER + payload_len) % 16))
        entries.append(PackEntry(name=name, offset=off, data=bytes(data[off:end])))
    version_str = version.split(b"\0", 1)[0].decode("ascii", "replace")
    return Pdl3(version=version_str, size=size, sha256=digest, models=tuple(entries))


def write_pdl3(models: dict[str, bytes], version: str = "v1.0") -> bytes:
    """Pack EDL2 blobs (name -> bytes, order kept) into a PDL3 package: the firmware's model-partition image."""
    if not models:
        raise ContainerError("a PDL3 package needs at least one model: give NAME=FILE arguments")
    if len(version) > PDL3_VERSION_MAX or not version.isascii():
        raise ContainerError(f"PDL3 package version {version!r} must be ASCII of at most 15 characters")
    names = [n.encode("utf-8") for n in models]
    blobs = []
    for name, blob in models.items():
        edl2_header(blob)
        blobs.append(bytes(blob) + bytes(-len(blob) % 16))
    name_off = PDL3_HEADER + 12 * len(names)
    data_off = (name_off + sum(map(len, names)) + 15) & ~15
    entries, cur_name, cur_data = b"", name_off, data_off
    for name, blob in zip(names, blobs):
        entries += struct.pack("<III", cur_data, cur_name, len(name))
        cur_name += len(name)
        cur_data += len(blob)
    names_bin = b"".join(names)
    size = data_off + sum(map(len, blobs))
    header = struct.pack("<4s16sI32sI", PDL3_MAGIC, version.encode("ascii"), size, bytes(32), len(names))
    out = bytearray(header + entries + names_bin + bytes(data_off - name_off - len(names_bin)) + b"".join(blobs))
    out[PDL3_SHA_OFFSET : PDL3_SHA_OFFSET + 32] = pdl3_digest(out, size)
    return bytes(out)
