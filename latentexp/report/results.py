"""Runs as pandas tables, for a notebook or a script: the functions `latentexp report` reads runs
with. ``import latentexp; latentexp.load_runs("outputs")``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from latentexp.errors import DataError
from latentexp.io import read_bytes
from latentexp.runs.rundir import RunDir


def load_runs(paths: str | Path | list[str | Path]) -> pd.DataFrame:
    """One row per run under ``paths`` (output roots or run directories; a run found twice counts
    once). Columns: the spec's ``dataset``, ``model``, ``loss``, ``lambda`` (None for a loss that
    has no λ), ``seed``, ``identity`` (the hash), ``run_dir``, ``status`` (finished, failed,
    started), ``setup`` and ``loss_label`` (the settings that tell apart runs of one table cell),
    ``settings`` (the whole identity, flattened), the metrics of result.json (``test_accuracy``,
    ``test_micro_f1``, ``test_macro_f1``, ``val_accuracy_best``, ``epochs_run``, ``best_epoch``,
    ``epoch_seconds_mean``, ``train_seconds``, ``silhouette_test``; None until finished),
    ``cluster.<kmeans|gmm|true_labels>.<metric>`` where `latentexp analyze` ran, ``precision``,
    ``class_names`` (label i's name, where the run recorded them) and ``code`` (the latentexp
    version and revision)."""
    from latentexp.report.collect import collect_runs

    return collect_runs([paths] if isinstance(paths, (str, Path)) else list(paths))


def load_history(run: str | Path | pd.Series | dict[str, Any]) -> pd.DataFrame:
    """A run's history.csv, one row per epoch (``epoch``, ``train_loss``, ``val_accuracy``, ``lr``,
    …, docs/runs.md's table of run files). ``run`` is its directory or a row of ``load_runs``."""
    path = Path(run["run_dir"]) if isinstance(run, (pd.Series, dict)) else Path(run)
    history = RunDir(path).history
    if not history.exists():
        raise DataError(f"{path} has no {history.name}: it is not a run directory, or the run has not "
                        f"finished an epoch yet (`latentexp status {path}` says how far it got).")
    try:
        return pd.read_csv(io.BytesIO(read_bytes(history)))  # a regular file of bounded size only
    except (OSError, ValueError) as err:
        raise DataError(f"{history} is unreadable ({err}); restore it from a copy of the run, or delete the "
                        f"run directory and train it again with its `latentexp train` command.") from None
