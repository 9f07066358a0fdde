"""Epoch checkpoints, written atomically and loaded without unpickling arbitrary objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentexp.io import atomic_write
from latentexp.tensor_files import UnsafeFile, load_tensors


class _KeepsWriteErrors:
    """The file torch.save writes to, keeping the OSError of a failed write: torch's writer turns a
    full disk into a RuntimeError without its errno ("unexpected pos ..."), raised again here as
    the OSError that says "No space left on device"."""

    def __init__(self, file) -> None:
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.file.flush()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    def write(file) -> None:
        out = _KeepsWriteErrors(file)
        try:
            torch.save(state, out)
        except RuntimeError:
            if out.error is not None:
                raise out.error from None
            raise

    atomic_write(path, write, mode="wb")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state in ``path``; a file that holds anything but tensors and plain containers is
    refused unread (ValueError) rather than loaded with code of its own."""
    try:
        return load_tensors(path)
    except UnsafeFile as err:
        raise ValueError(f"{err}; no latentexp checkpoint holds such objects") from None
