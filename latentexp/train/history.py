"""history.csv: one row per epoch."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from latentexp.io import write_text


def write_history(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())
