"""Text from disk made safe to print: a run directory's name is anyone's choice on a shared output
root, and a name holding terminal escape sequences must not retitle, clear or recolour the
terminal of whoever runs `status` or `report`."""

from __future__ import annotations

import unicodedata


def printable(text: object) -> str:
    """``text`` with every control or format character (ESC, CR, BEL, bidi overrides, …) written
    as a Python escape (``\\x1b``); letters of any script stay as they are."""
    out = []
    for char in str(text):
        if unicodedata.category(char)[0] == "C":
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)
