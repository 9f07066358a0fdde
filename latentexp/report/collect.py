"""Find the runs under some paths and flatten each into one table row.

A run is a directory with a ``result.json`` (finished or failed) or with only a ``config.yaml``
(started, not finished: killed, or still training). Runs are identified by their run identity,
so a run reached through two paths, or copied to two output roots, counts once.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from latentexp.analysis import ANALYSIS_FILE
from latentexp.errors import DataError
from latentexp.identity import hash_identity, identity_dict, plain_config, run_fields
from latentexp.losses import LOSSES
from latentexp.report.published import PAPER_MODELS, published_values

RESULT_METRICS = ("test_accuracy", "test_micro_f1", "test_macro_f1", "val_accuracy_best", "epochs_run",
                  "best_epoch", "epoch_seconds_mean", "train_seconds", "silhouette_test")
# Which parts of analysis.json become columns: cluster.<part>.<metric>.
CLUSTER_PARTS = ("kmeans", "gmm", "true_labels")
# Readable fields that are table rows already, never part of a setup or loss label.
ROW_KEYS = ("seed", "lambda", "dataset.name", "model.name", "loss.name")
# A setting absent from a run's config (an older version of the configs), told apart from null.
MISSING = "<missing>"


def find_run_dirs(paths: list[str | Path]) -> list[Path]:
    found: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise DataError(f"{path} does not exist; give `latentexp report` a run directory or an output "
                            f"root such as outputs/ (runs live in outputs/runs/<name>/).")
        for marker in ("result.json", "config.yaml"):
            candidates = [path / marker] if (path / marker).is_file() else path.rglob(marker)
            for file in candidates:
                if file.parent.name != ".hydra":  # Hydra's own copy of the job config
                    found.add(file.parent.resolve())
    return sorted(found)


def load_run(run_dir: Path) -> dict[str, Any] | None:
    """One row: readable fields, status, metrics, cluster quality; None if not a latentexp run."""
    result_path, config_path = run_dir / "result.json", run_dir / "config.yaml"
    try:
        result = json.loads(result_path.read_text()) if result_path.exists() else None
        config = result["config"] if result else yaml.safe_load(config_path.read_text())
    except (OSError, ValueError, KeyError, yaml.YAMLError) as err:
        raise DataError(f"{run_dir} holds an unreadable result.json or config.yaml ({err}); "
                        f"move it away or delete it and re-run its sweep.") from err
    parts = ("loss", "dataset", "model")
    if not isinstance(config, dict) or not all(isinstance(config.get(k), dict) for k in parts):
        return None  # some other tool's config.yaml
    identity = identity_dict(config)  # resolved once: the hash and the settings both come from it
    row: dict[str, Any] = {**run_fields(config), "run_dir": str(run_dir), "identity": hash_identity(identity),
                           "status": result.get("status", "finished") if result else "started",
                           "max_epochs": (config.get("trainer") or {}).get("max_epochs")}
    row["settings"] = _flatten(identity)
    row["paper_settings"] = _has_paper_settings(row)
    for key in RESULT_METRICS:
        row[key] = (result or {}).get(key) if row["status"] == "finished" else None
    analysis_path = run_dir / ANALYSIS_FILE
    if row["status"] == "finished" and analysis_path.exists():
        analysis = json.loads(analysis_path.read_text())
        for part in CLUSTER_PARTS:
            for metric, value in (analysis.get(part) or {}).items():
                row[f"cluster.{part}.{metric}"] = value
        row["gmm_covariance"] = analysis.get("gmm_covariance")
    return row


def _has_paper_settings(row: dict) -> bool:
    """True when the run is the paper's own setup for its loss: every identity setting but the
    seed and λ equals that of `experiment=paper_<dataset> loss=<loss>` (so no data limits, no
    other epochs, optimizer or loss parameters)."""
    if PAPER_MODELS.get(row["dataset"]) != row["model"] or row["loss"] not in _published_losses():
        return False
    mine = {k: v for k, v in row["settings"].items() if k not in ("seed", "lambda")}
    return mine == _paper_settings(row["dataset"], row["loss"])


@cache
def _published_losses() -> frozenset[str]:
    return frozenset(published_values()["loss"])


@cache
def _paper_settings(dataset: str, loss: str) -> dict[str, Any]:
    from latentexp.presets import compose_config

    lam = "0" if loss == "ce" else "0.5"
    cfg = compose_config([f"experiment=paper_{dataset}", f"loss={loss}", f"lambda={lam}"])
    flat = _flatten(identity_dict(plain_config(cfg)))
    return {k: v for k, v in flat.items() if k not in ("seed", "lambda")}


def collect_runs(paths: list[str | Path]) -> pd.DataFrame:
    """All runs under ``paths``, one row each, with ``setup`` and ``loss_label`` columns that tell
    apart runs whose other settings differ (so no cell ever averages unlike runs)."""
    rows = [row for d in find_run_dirs(paths) if (row := load_run(d)) is not None]
    if not rows:
        raise DataError(f"no latentexp runs (result.json or config.yaml) under {', '.join(map(str, paths))}; "
                        f"train some with `latentexp train -m ...` first.")
    frame = pd.DataFrame(rows)
    # A run found twice (overlapping paths, copies) counts once, preferring a finished copy.
    rank = frame["status"].map({"finished": 0, "failed": 1}).fillna(2)
    frame = (frame.assign(_rank=rank).sort_values(["_rank", "run_dir"])
             .drop_duplicates(["identity", "seed"]).drop(columns="_rank"))
    frame["setup"] = _labels(frame, lambda key, row: not key.startswith("loss."), ["dataset", "model"])
    frame["loss_label"] = _labels(frame, _is_loss_parameter, ["dataset", "model", "setup", "loss"])
    frame["loss_label"] = [f"{loss} ({label.replace('loss.', '')})" if label else loss
                           for loss, label in zip(frame["loss"], frame["loss_label"], strict=False)]
    return frame.drop(columns="settings").sort_values(["dataset", "model", "setup", "loss_label", "lambda",
                                                       "seed"], na_position="first").reset_index(drop=True)


def _is_loss_parameter(key: str, row: pd.Series) -> bool:
    loss_cls = LOSSES.get(row["loss"])
    lambda_key = f"loss.{loss_cls.lambda_param}" if loss_cls and loss_cls.lambda_param else None
    return key.startswith("loss.") and key != lambda_key


def _labels(frame: pd.DataFrame, keep, group_by: list[str]) -> list[str]:
    """Per row, ``key=value`` for the kept settings that differ within its group (else '')."""
    labels = [""] * len(frame)
    position = {index: i for i, index in enumerate(frame.index)}
    for _, group in frame.groupby(group_by, dropna=False, sort=False):
        in_group = [row["settings"] for _, row in group.iterrows()]
        varying = sorted({key for _, row in group.iterrows() for key in row["settings"]
                          if key not in ROW_KEYS and keep(key, row)
                          and len({json.dumps(s.get(key, MISSING), sort_keys=True) for s in in_group}) > 1})
        for index, row in group.iterrows():
            settings = row["settings"]
            labels[position[index]] = ", ".join(f"{k}={_short(settings.get(k, MISSING))}" for k in varying)
    return labels


def _short(value: Any) -> str:
    return "null" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat
