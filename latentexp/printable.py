"""Text from disk made safe to print: a run directory's name is anyone's choice on a shared output
root, and a name holding terminal escape sequences must not retitle, clear or recolour the
terminal of whoever runs `status` or `report`."""

from __future__ import annotations

import logging
import unicodedata


def printable(text: object, keep: str = "") -> str:
    """``text`` with every control or format character (ESC, CR, BEL, bidi overrides, …) but those
    in ``keep`` written as a Python escape (``\\x1b``); letters of any script stay as they are."""
    out = []
    for char in str(text):
        if unicodedata.category(char)[0] == "C" and char not in keep:
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


class EscapedRecords(logging.Filter):
    """Every record of the logger it is added to, its arguments formatted in and escaped (lines
    and tabs kept): the names of runs, files and settings a log line quotes may come from disk."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage(), keep="\n\t"), ()
        return True


def escape_log_records(logger: logging.Logger) -> None:
    if not any(isinstance(f, EscapedRecords) for f in logger.filters):
        logger.addFilter(EscapedRecords())
