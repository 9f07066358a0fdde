"""Unpickling that can build arrays and nothing else.

CIFAR's batches are pickles, and a pickle can import and call anything as it loads. Files checked
against their published md5 are CIFAR's own; any other (``dataset.verify_md5=false``: a subset, a
copy of unknown origin, a file planted in a shared ``./data``) is first read here, where a pickle
may name only NumPy's array constructors: one that names anything else is refused before
torchvision's loader (a plain ``pickle.load``) ever sees it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from latentexp.errors import DataError

# What pickled NumPy arrays and Python 2's byte strings need (NumPy 1 and 2 module names).
# Protocol 5 (pickle.HIGHEST_PROTOCOL) rebuilds arrays with numeric._frombuffer, a reshaped
# np.frombuffer.
ARRAY_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a file of arrays never does")
        return super().find_class(module, name)


def load_arrays_only(path: Path, shown_as: Path | None = None) -> Any:
    """The object pickled in ``path``, if it is built of arrays, lists, dicts, strings and numbers
    only; else a DataError that names the file (``shown_as``, where ``path`` is a private copy of
    it; nothing in it was run)."""
    try:
        with open(path, "rb") as f:
            return _ArraysOnly(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, OSError) as err:
        raise DataError(f"{shown_as or path} was refused unread: it is not a pickle of arrays as CIFAR's "
                        f"files are ({type(err).__name__}: {err}). Nothing in it was run. A subset you made: "
                        f"save it as dicts of NumPy arrays and lists only; else delete the folder and fetch "
                        f"the dataset again (`python scripts/fetch_data.py`, or dataset.download=true with "
                        f"an empty dataset.root).") from None
