"""Epoch checkpoints, written atomically and loaded without unpickling arbitrary objects."""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from latentexp.io import atomic_write


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    # Serialised in memory first: torch's writer turns a full disk into a RuntimeError without its
    # errno, and a plain write keeps the OSError that says "No space left on device".
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()), mode="wb")


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
