"""Content-addressed artifact cache: atomic writes, verified reads, safe under parallel workers.

An entry is a directory named by the sha256 of its key (a JSON-able dict of everything the
artifact depends on). It is built in a temporary sibling directory and renamed into place, so a
crash never leaves a half-written entry. Its `manifest.json` records the sha256 of every file; an
entry whose files do not match is reported and rebuilt, never used. A per-key file lock makes
parallel pytest workers wait for the first builder instead of building twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from host.errors import HarnessError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def default_cache_root() -> Path:
    """`$HIL_CACHE_DIR`, else `~/.cache/yolo11-hil`: shared by every checkout of the harness."""
    return Path(os.environ.get("HIL_CACHE_DIR") or Path.home() / ".cache" / "yolo11-hil")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in blocks by hashlib, never whole into memory)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def key_digest(key: dict) -> str:
    """Stable digest of a key dict (sorted JSON), the entry's directory name."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """A verified entry: its directory, its key and the manifest's file hashes."""

    path: Path
    key: dict
    files: dict[str, str]
    created: float
    hit: bool  # True when served from the cache, False when just built

    def file(self, name: str) -> Path:
        if name not in self.files:
            raise KeyError(f"cache entry {self.path.name} has no file {name!r}")
        return self.path / name


class ArtifactCache:
    """One namespace (e.g. "models", "references") of content-addressed entries under a root."""

    def __init__(self, namespace: str, root: Path | None = None) -> None:
        self.root = (root or default_cache_root()) / namespace
        self.root.mkdir(parents=True, exist_ok=True)

    def entry_dir(self, key: dict) -> Path:
        return self.root / key_digest(key)

    def get_or_build(self, key: dict, build: Callable[[Path], None]) -> CacheEntry:
        """Return the verified entry for `key`, running `build(tmpdir)` to create it if needed.

        `build` writes its files into the directory it is given; it must not write elsewhere.
        """
        final = self.entry_dir(key)
        with self._lock(final.name):
            entry = self._read_verified(final, key)
            if entry is not None:
                return entry
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name[:12]}-", dir=self.root))
            try:
                build(tmp)
                files = {
                    p.relative_to(tmp).as_posix(): sha256_file(p)
                    for p in sorted(tmp.rglob("*"))
                    if p.is_file()
                }
                manifest = {"key": key, "files": files, "created": time.time()}
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
                os.chmod(tmp, 0o755)  # mkdtemp makes it private; entries are shared by every checkout
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return CacheEntry(final, key, files, manifest["created"], hit=False)

    def lookup(self, key: dict) -> CacheEntry | None:
        """The verified entry for `key` if present, else None (a corrupted one is removed)."""
        final = self.entry_dir(key)
        with self._lock(final.name):
            return self._read_verified(final, key)

    def _read_verified(self, final: Path, key: dict) -> CacheEntry | None:
        if not final.exists():
            return None
        problem = self._verify(final)
        if problem is None:
            manifest = json.loads((final / MANIFEST).read_text())
            return CacheEntry(final, manifest["key"], manifest["files"], manifest["created"], hit=True)
        log.warning("cache entry %s is corrupted (%s): rebuilding it", final, problem)
        print(f"[cache] entry {final} is corrupted ({problem}); rebuilding it", flush=True)
        shutil.rmtree(final, ignore_errors=True)
        return None

    @staticmethod
    def _verify(final: Path) -> str | None:
        try:
            manifest = json.loads((final / MANIFEST).read_text())
            files = manifest["files"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"unreadable manifest: {exc}"
        for name, digest in files.items():
            path = final / name
            if not path.is_file():
                return f"missing file {name}"
            if sha256_file(path) != digest:
                return f"sha256 mismatch in {name}"
        return None

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(exist_ok=True)
        try:
            handle = open(locks / f"{name}.lock", "a+")
        except OSError as exc:
            raise HarnessError(
                f"cannot create a lock in the cache {self.root}: {exc}; "
                "set HIL_CACHE_DIR to a writable directory"
            ) from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
