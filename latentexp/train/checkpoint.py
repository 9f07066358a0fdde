"""Epoch checkpoints, written atomically and loaded without unpickling arbitrary objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentexp.io import atomic_write


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(state, f), mode="wb")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    # weights_only: a checkpoint file can hold tensors and plain containers, never code.
    return torch.load(path, map_location="cpu", weights_only=True)
