"""Atomic file writes: write to a temporary file in the same directory, then rename.

Reads of files other jobs or users may have placed (a shared output root) go through
``open_regular``: regular files only, of a bounded size, so that a FIFO never hangs a command and a
link to /dev/zero never fills the memory.

For fault tests, ``LATENTEXP_FAULT=<file name>:<n>`` kills the process (SIGKILL) in the middle of
its n-th write of that file: half of the temporary file written, nothing renamed.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Call ``write(fileobj)`` on a temporary file, fsync it and rename it over ``path``.

    A reader sees either the old file or the complete new one, never a partial write. The file
    gets the permissions a plain ``open`` would give it (0666 less the umask): a temporary file is
    private (0600), and results on a shared output root must stay readable by colleagues.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            _fault_point(path, f)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None:  # a failed write() names no file: name the one it was for
            err.filename = str(path)
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: set it straight back
    os.umask(mask)
    return mask


FAULT_ENV = "LATENTEXP_FAULT"
_writes: dict[str, int] = {}


def _fault_point(path: Path, f) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec or spec.rpartition(":")[0] != path.name:
        return
    _writes[path.name] = _writes.get(path.name, 0) + 1
    if _writes[path.name] == int(spec.rpartition(":")[2]):
        f.truncate(max(0, f.tell() // 2))  # a half-written temporary file
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def remove_partial_writes(directory: Path) -> list[Path]:
    """Delete temporary files that a killed atomic write left behind (they were never renamed)."""
    leftovers = sorted(Path(directory).glob(".*.tmp"))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def write_json(path: str | Path, data: Any) -> None:
    atomic_write(path, lambda f: json.dump(data, f, indent=2, sort_keys=True, allow_nan=True))


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def write_npz(path: str | Path, **arrays: Any) -> None:
    """A compressed .npz of plain arrays (no pickles), written atomically."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, lambda f: f.write(buf.getvalue()), mode="wb")


def file_stamp(path: str | os.PathLike) -> list[int] | None:
    """What says a file is unchanged since it was last seen: size, modification and status-change
    times (ns), inode and device. None where the file system has no inode numbers (then nothing
    keyed by it may be trusted: hash again). Every cache of something read from a file uses it
    (data digests, a weights file's check, conf/'s compositions)."""
    stat = os.stat(path)
    if not stat.st_ino:
        return None
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]


# Far above any file a run writes (result.json is kilobytes, test latents tens of megabytes).
MAX_READ_BYTES = {".json": 64 * 2**20, ".csv": 64 * 2**20, ".yaml": 16 * 2**20, ".lock": 2**20}
MAX_OTHER_BYTES = 2 * 2**30


def _read_limit(path: Path, limit: int | None) -> int:
    return MAX_READ_BYTES.get(path.suffix, MAX_OTHER_BYTES) if limit is None else limit


def open_regular(path: str | Path, limit: int | None = None, follow_links: bool = False):
    """``path`` opened for binary reading if it is a regular file of at most ``limit`` bytes (by
    its suffix by default); else OSError (a symbolic link, a FIFO, a device, a directory) or
    ValueError (too large). Opened without blocking, so a FIFO is refused, not waited on, and
    without following a link: a run's file that is a link to elsewhere (a system file, say) is
    never read as the run's (``follow_links``: data files, which may well be links, are)."""
    path = Path(path)
    limit = _read_limit(path, limit)
    no_follow = 0 if follow_links else getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | no_follow)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symbolic link: a run's files are read as they are, never through "
                                       "a link", str(path)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a directory)", str(path))
        if info.st_size > limit:
            raise ValueError(f"{info.st_size} bytes, more than the {limit} bytes a {path.name} can be")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, limit: int | None = None) -> bytes:
    """A regular file's bytes, at most ``limit`` (``open_regular``), even if it grows meanwhile."""
    with open_regular(path, limit) as f:
        limit = _read_limit(Path(path), limit)
        size = os.fstat(f.fileno()).st_size  # at most limit (open_regular): read that, not `limit`
        data = f.read(size + 1)
        if len(data) > size:  # it grew while being read: read on, up to the limit
            data += f.read(limit + 1 - len(data))
    if len(data) > limit:
        raise ValueError(f"more than the {limit} bytes a {Path(path).name} can be")
    return data


def read_text(path: str | Path, limit: int | None = None) -> str:
    return read_bytes(path, limit).decode()


def read_json(path: str | Path) -> Any:
    return json.loads(read_bytes(path))


def read_json_object(path: str | Path) -> dict:
    """``read_json`` of a file that must hold a JSON object (ValueError if it holds anything else)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data
