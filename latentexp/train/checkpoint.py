"""Epoch checkpoints, written atomically and loaded without unpickling arbitrary objects."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from latentexp.io import atomic_write


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
        # weights_only: a checkpoint file can hold tensors and plain containers, never code.
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's text invites weights_only=False: never here
        named = re.search(r"GLOBAL (\S+)", str(err))
        found = named.group(1) if named else "objects other than tensors"
        raise ValueError(f"it holds {found}, which no latentexp checkpoint does (a pickle that could run "
                         f"code): refused unread") from None
