"""Atomic file writes: write to a temporary file in the same directory, then rename.

For fault tests, ``LATENTEXP_FAULT=<file name>:<n>`` kills the process (SIGKILL) in the middle of
its n-th write of that file: half of the temporary file written, nothing renamed.
"""

from __future__ import annotations

import json
import os
import signal
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


def read_json(path: str | Path) -> Any:
    with open(path) as f:
        return json.load(f)
