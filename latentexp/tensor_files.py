"""Files of tensors read without running code: ``torch.load`` with ``weights_only=True``, and a
refusal in latentexp's words. PyTorch's own message for a refused pickle advises loading it again
with ``weights_only=False``, an invitation to run whatever code the file holds, and its warnings
can carry terminal escapes; neither reaches the user."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch


class UnsafeFile(ValueError):
    """A file that holds more than tensors and plain containers: refused unread."""


def load_tensors(path: str | Path) -> Any:
    """``path``'s tensors and plain containers, on the CPU. UnsafeFile where it holds other objects
    (their class named); any other failure as torch raises it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's warnings about the file: the refusal says it
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        named = re.search(r"GLOBAL (\S+)", str(err))
        found = named.group(1) if named else "objects other than tensors"
        raise UnsafeFile(f"it holds {found}: a pickle that could run code, refused unread") from None


def first_line(err: BaseException) -> str:
    """An error's first line with terminal escape sequences removed, for a one-line reason."""
    text = str(err).splitlines()[0] if str(err) else ""
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
