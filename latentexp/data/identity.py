"""The data a run reads, as part of its identity: the fingerprint of the files a dataset source
loads (latentexp.data.fingerprint), found, or downloaded where the source allows, before the run
is named; and the check, once they are read, that they are still those files."""

from __future__ import annotations

from latentexp.data.datasets import DataSource
from latentexp.data.fingerprint import fingerprint
from latentexp.errors import DataError


def data_fingerprint(source: DataSource, name: str, fetch: bool = True) -> str:
    """The fingerprint of dataset ``name``'s files (each file read once per machine: the digests
    are cached by file stamp). A missing dataset is downloaded (dataset.download) or named, as
    loading it would; with ``fetch=False`` (a --dry-run) it is never read or fetched: refused."""
    files = source.files()
    if files is None and not fetch:
        raise DataError(f"dataset {name} is not here yet, and a --dry-run reads and fetches no data: run "
                        f"without --dry-run (a run downloads it where dataset.download allows), or fetch "
                        f"it first (python scripts/fetch_data.py {name}).")
    if files is None:
        source.load()  # downloads, or raises the DataError that names what is missing
        files = source.files()
    if files is None:
        raise DataError(f"dataset {name} was read but its files cannot be found again; check "
                        f"dataset.root and $LATENTEXP_DATA.")
    return fingerprint(files)


def check_data_unchanged(source: DataSource, name: str, expected: str) -> None:
    """After loading: the files are still the ones the run was named after (not replaced while the
    run started, which would train on other data under this run's name)."""
    files = source.files()
    if files is None or fingerprint(files) != expected:
        raise DataError(f"the files of dataset {name} changed while the run started (they are "
                        f"no longer the data of fingerprint {expected}); run the command again once they "
                        "stay as they are.")
