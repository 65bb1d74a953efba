"""The artifact cache: atomic, verified, rebuilt when corrupted, built once under parallel workers."""

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from host.cache import MANIFEST, ArtifactCache, sha256_file


def _writer(content: bytes):
    def build(tmp: Path) -> None:
        (tmp / "a.bin").write_bytes(content)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("b")
    return build


def test_build_then_hit(tmp_path: Path) -> None:
    cache = ArtifactCache("t", tmp_path)
    first = cache.get_or_build({"k": 1}, _writer(b"x"))
    assert not first.hit and first.file("a.bin").read_bytes() == b"x"
    second = cache.get_or_build({"k": 1}, _writer(b"never called"))
    assert second.hit and second.path == first.path and second.files == first.files
    assert set(first.files) == {"a.bin", "sub/b.txt"}


def test_sha256_file(tmp_path: Path) -> None:
    """FIPS 180-4 vectors: "abc", and a million "a" (larger than one read block), from a str or a Path."""
    (tmp_path / "abc").write_bytes(b"abc")
    (tmp_path / "a").write_bytes(b"a" * 1_000_000)
    assert sha256_file(tmp_path / "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(str(tmp_path / "a")) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"


def test_key_order_does_not_matter(tmp_path: Path) -> None:
    cache = ArtifactCache("t", tmp_path)
    assert cache.entry_dir({"a": 1, "b": 2}) == cache.entry_dir({"b": 2, "a": 1})
    assert cache.entry_dir({"a": 1}) != cache.entry_dir({"a": 2})


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_corrupted_entry_is_rebuilt_not_used(tmp_path: Path, damage: str, capsys) -> None:
    cache = ArtifactCache("t", tmp_path)
    entry = cache.get_or_build({"k": 1}, _writer(b"payload" * 100))
    target = entry.path / "a.bin"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:10])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[3] ^= 1
        target.write_bytes(bytes(data))
    elif damage == "delete":
        target.unlink()
    else:
        (entry.path / MANIFEST).write_text("{not json")
    rebuilt = cache.get_or_build({"k": 1}, _writer(b"payload" * 100))
    assert not rebuilt.hit
    assert rebuilt.file("a.bin").read_bytes() == b"payload" * 100
    assert "corrupted" in capsys.readouterr().out


def test_failed_build_leaves_no_entry_and_no_temp(tmp_path: Path) -> None:
    cache = ArtifactCache("t", tmp_path)

    def broken(tmp: Path) -> None:
        (tmp / "half").write_bytes(b"half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cache.get_or_build({"k": 1}, broken)
    assert cache.lookup({"k": 1}) is None
    assert [p.name for p in cache.root.iterdir() if not p.name.startswith(".locks")] == []


def _worker(root: str, log: str) -> None:
    cache = ArtifactCache("t", Path(root))

    def build(tmp: Path) -> None:
        with open(log, "a") as handle:
            handle.write("built\n")
        time.sleep(0.5)
        (tmp / "a.bin").write_bytes(b"x")

    entry = cache.get_or_build({"k": "parallel"}, build)
    assert entry.file("a.bin").read_bytes() == b"x"


def test_parallel_workers_build_once(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text().count("built") == 1


def test_manifest_records_key_and_hashes(tmp_path: Path) -> None:
    entry = ArtifactCache("t", tmp_path).get_or_build({"k": 1}, _writer(b"x"))
    manifest = json.loads((entry.path / MANIFEST).read_text())
    assert manifest["key"] == {"k": 1}
    assert len(manifest["files"]["a.bin"]) == 64
