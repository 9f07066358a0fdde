"""Content fingerprints of the files a run's data comes from, for the run identity: a run never
reuses, resumes or averages in a result computed on other bytes.

A file's SHA-256 is computed once and cached (``$LATENTEXP_CACHE``, else
``$XDG_CACHE_HOME/latentexp``, else ``~/.cache/latentexp``) under its resolved path and its
``file_stamp``, so a later run only stats its files. The stamp holds what a copy tool cannot carry
over: the inode and the status-change time (ctime), which the kernel sets on every write, rename
or ``utime`` and nothing can set back. Size and modification time alone are what ``cp -p``,
``rsync -t`` or an archive restore, so a rewritten file would have passed for the old one. Where
the file system gives no inode number, nothing is cached: the file is hashed every time. A cache
that cannot be written costs the hashing, nothing else. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from latentexp.io import file_stamp, write_json

CACHE_FILE = "file_digests.json"
CHUNK = 1 << 20

_memory: dict[str, dict] = {}  # this process's digests: path -> {stamp, sha256}


def cache_dir() -> Path:
    explicit = os.environ.get("LATENTEXP_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "latentexp"


def _read_cache() -> dict[str, dict]:
    try:
        with open(cache_dir() / CACHE_FILE) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _matches(entry, stamp: list[int] | None) -> bool:
    """A cached digest that is still the file's: the same stamp (never for a file without one)."""
    return stamp is not None and isinstance(entry, dict) and entry.get("stamp") == stamp


def file_digests(paths: list[Path]) -> dict[Path, str]:
    """The SHA-256 of each file, from the cache where its stamp matches."""
    out: dict[Path, str] = {}
    stored: dict[str, dict] | None = None
    fresh = {}
    for path in paths:
        key = str(path.resolve())
        stamp = file_stamp(path)
        entry = _memory.get(key)
        if not _matches(entry, stamp):  # this process has not seen it as it is: the cache file
            stored = _read_cache() if stored is None else stored
            entry = stored.get(key)
        if not _matches(entry, stamp):
            entry = {"stamp": stamp, "sha256": _sha256(path)}
            if stamp is not None:
                fresh[key] = entry
        _memory[key] = entry
        out[path] = entry["sha256"]
    if fresh:
        _write_cache(fresh)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _write_cache(fresh: dict[str, dict]) -> None:
    """Merge the new digests into the cache file (atomically; a lost race loses cache entries only)."""
    with contextlib.suppress(OSError):  # a read-only home: the digests are computed again next time
        write_json(cache_dir() / CACHE_FILE, {**_read_cache(), **fresh})


def fingerprint(files: dict[str, Path]) -> str:
    """One fingerprint of named files (name -> path): their names and contents, in name order.
    The names are what the loader calls them (``train-images-idx3-ubyte.gz``, a class folder and
    file name), so a moved copy of the same files has the same fingerprint."""
    digests = file_digests(list(files.values()))
    combined = hashlib.sha256()
    for name in sorted(files):
        combined.update(f"{name}\0{digests[files[name]]}\n".encode())
    return "sha256:" + combined.hexdigest()[:20]

