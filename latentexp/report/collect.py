"""Find the runs under some paths and flatten each into one table row.

A run is a directory with a run spec: result.json's once it finished or failed, spec.json's while
it is started but not finished (killed, or still training). Every field comes from the stored
spec, none is re-derived. Runs are identified by their identity hash, so a run reached through two
paths, or copied to two output roots, counts once.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from latentexp.config.tree import LABEL_KEYS
from latentexp.errors import DataError
from latentexp.io import read_json_object
from latentexp.printable import printable
from latentexp.progress import Steps, each
from latentexp.report.published import PAPER_MODELS, published_values
from latentexp.report.roles import BASELINE
from latentexp.runs.rundir import RunDir, find_run_dirs
from latentexp.runs.spec import RunSpec, flatten
from latentexp.train.settings import inert_settings

log = logging.getLogger("latentexp")

RESULT_METRICS = ("test_accuracy", "test_micro_f1", "test_macro_f1", "val_accuracy_best", "epochs_run",
                  "best_epoch", "epoch_seconds_mean", "train_seconds", "silhouette_test")
# Which parts of analysis.json become columns: cluster.<part>.<metric>.
CLUSTER_PARTS = ("kmeans", "gmm", "true_labels")
# Readable fields that are table rows already, never part of a setup or loss label.
ROW_KEYS = ("seed", "lambda", "dataset.name", "model.name", "loss.name")
# A setting absent from a run's identity (an older version of the configs), told apart from null.
MISSING = "<missing>"
# Settings are compared by their JSON text, so 1 and 1.0, or true and 1, stay different values; one
# encoder for all (json.dumps builds a new one per call), giving json.dumps(value, sort_keys=True).
_encode = json.JSONEncoder(sort_keys=True).encode
_MISSING_ENCODED = _encode(MISSING)


def load_run(files: RunDir) -> dict[str, Any] | None:
    """One row: the spec's fields, status, metrics, cluster quality; None if not a run of this format."""
    result, data = files.result_and_spec()
    if data is None:
        return None
    spec = RunSpec.from_json(data, files.path)
    row: dict[str, Any] = {"dataset": spec.dataset, "model": spec.model, "loss": spec.loss,
                           "lambda": spec.lam, "seed": spec.seed, "run_dir": str(files.path),
                           "identity": spec.hash,
                           "status": result.get("status", "finished") if result else "started",
                           "max_epochs": spec.config["trainer"]["max_epochs"]}
    row["settings"] = flatten(spec.identity)
    row["loss_changes"] = _changes_from_defaults(spec)
    # Its own λ key is a row (COREL's loss.lam), never a label.
    row["row_keys"] = (*ROW_KEYS, *([spec.lambda_key] if spec.lambda_key else []))
    row["paper_settings"] = _has_paper_settings(row)
    for key in RESULT_METRICS:
        row[key] = (result or {}).get(key) if row["status"] == "finished" else None
    absent = [k for k in ("test_accuracy", "test_micro_f1", "val_accuracy_best")
              if row["status"] == "finished" and not isinstance(row[k], int | float)]
    if absent:  # a hand-edited or damaged result: counted as missing (‡), and said
        log.warning("%s is finished but its result.json has no %s: its cells count it as missing (‡)",
                    printable(files.path), ", ".join(absent))
    versions = (result or {}).get("versions") or {}
    code = [versions.get("latentexp"), versions.get("latentexp_revision")]
    row["code"] = " ".join(filter(None, code)) or None
    row["precision"] = (result or {}).get("precision")  # bf16, tf32 or fp32; absent before format 3
    row["class_names"] = ((result or {}).get("data") or {}).get("class_names")  # absent before format 5
    if row["status"] == "finished" and files.analysis.exists():
        try:
            analysis = read_json_object(files.analysis)
        except (OSError, ValueError) as err:
            log.warning("%s is unreadable (%s): its cluster metrics are left out; `latentexp analyze "
                        "--force %s` computes them again", printable(files.analysis), err,
                        printable(files.path))
            return row
        for part in CLUSTER_PARTS:
            for metric, value in (analysis.get(part) or {}).items():
                row[f"cluster.{part}.{metric}"] = value
        row["gmm_covariance"] = analysis.get("gmm_covariance")
    return row


def _load_or_skip(files: RunDir, skipped: list[RunDir]) -> dict[str, Any] | None:
    """``load_run``, or None with a warning for a run whose files are damaged or planted (added to
    ``skipped``): one bad directory in a shared tree leaves itself out, not the whole report."""
    try:
        return load_run(files)
    except DataError as err:
        log.warning("left out: %s", printable(err))
    except (KeyError, TypeError, ValueError, AttributeError) as err:  # valid JSON, not a run's fields
        log.warning("left out: %s holds a result or spec without the fields of a run (%s: %s); delete "
                    "it, or run the run's `latentexp train` command again", printable(files.path),
                    type(err).__name__, printable(err))
    skipped.append(files)
    return None


def _changes_from_defaults(spec: RunSpec) -> str:
    """``key=value`` for each loss parameter that differs from conf/loss/<name>.yaml ('' when none,
    or for a loss of another config tree); the loss's own λ parameter is not a change."""
    defaults = _loss_defaults(spec.loss)
    changed = {k: v for k, v in spec.config["loss"].items()
               if f"loss.{k}" in defaults and k not in ("_target_", *LABEL_KEYS)
               and f"loss.{k}" != spec.lambda_key and v != defaults[f"loss.{k}"]}
    return ", ".join(f"{k}={_short(v)}" for k, v in changed.items())


def _has_paper_settings(row: dict) -> bool:
    """True when the run is the paper's own setup for its loss: every identity setting but the
    seed and λ equals that of `experiment=paper_<dataset> loss=<loss>` (so no data limits, no
    other epochs, optimizer or loss parameters)."""
    if PAPER_MODELS.get(row["dataset"]) != row["model"] or row["loss"] not in _published_losses():
        return False
    mine = {k: v for k, v in row["settings"].items() if k not in row["row_keys"] and not _provenance(k)}
    return mine == _paper_settings(row["dataset"], row["loss"])


def _provenance(key: str) -> bool:
    """Identity keys that say which run format, data files, weights and user code a run came from,
    not which setup of the paper it is (the same setup in formats 3 to 5, or on a copy of the data).
    A built-in dataset's class follows from its name (validation holds them together), and runs
    before format 5 did not record it."""
    return key in ("format", "data", "weights", "dataset._target_") or key.startswith("code.")


@cache
def _published_losses() -> frozenset[str]:
    return frozenset(published_values()["loss"])


@cache
def _paper_settings(dataset: str, loss: str) -> dict[str, Any]:
    from latentexp.config.tree import compose

    lam = "0" if loss == BASELINE else "0.5"
    config = compose([f"experiment=paper_{dataset}", f"loss={loss}", f"lambda={lam}"])
    spec = RunSpec.from_config(config, resolve_data=False)
    keys = (*ROW_KEYS, *([spec.lambda_key] if spec.lambda_key else []))
    return {k: v for k, v in flatten(spec.identity).items() if k not in keys and not _provenance(k)}


def collect_runs(paths: list[str | Path]) -> pd.DataFrame:
    """All runs under ``paths``, one row each, with ``setup`` and ``loss_label`` columns that tell
    apart runs whose other settings differ (so no cell ever averages unlike runs)."""
    with Steps("finding runs", 1) as step:
        step(", ".join(map(str, paths)))
        found = find_run_dirs(paths)
    skipped: list[RunDir] = []
    loaded = [(d, _load_or_skip(d, skipped)) for d in each(found, "reading runs", unit="run")]
    rows = [row for _, row in loaded if row is not None]
    # A run with a spec is never old.
    old = [d for d, row in loaded if row is None and d not in skipped and d.is_old_format()]
    if old:
        log.warning("%d run(s) under %s were written before latentexp 0.2 (no run spec) and are left out; "
                    "`latentexp train` retrains them under new names. e.g. %s", len(old),
                    ", ".join(map(str, paths)), old[0].path)
    if not rows:
        if skipped:
            raise DataError(f"no readable latentexp runs under {', '.join(map(str, paths))}: {len(skipped)} "
                            f"left out as unreadable (the warnings above name each and say what to do).")
        raise DataError(f"no latentexp runs (result.json or spec.json) under {', '.join(map(str, paths))}; "
                        f"train some with `latentexp train -m ...` first.")
    frame = pd.DataFrame(rows)
    # A run found twice (overlapping paths, copies) counts once, preferring a finished copy.
    rank = frame["status"].map({"finished": 0, "failed": 1}).fillna(2)
    frame = (frame.assign(_rank=rank).sort_values(["_rank", "run_dir"])
             .drop_duplicates(["identity", "seed"]).drop(columns="_rank"))
    frame["setup"] = _labels(frame, lambda key, row: not key.startswith("loss."), ["dataset", "model"])
    # A loss parameter shows where it differs from the loss's defaults, so the loss as published
    # keeps its plain name beside its variants (an ablation), and no two variants share a label.
    frame["loss_label"] = _labels(frame, lambda key, row: key.startswith("loss."),
                                  ["dataset", "model", "setup", "loss"],
                                  shown=lambda key, value, row: _loss_defaults(row["loss"]).get(key, MISSING)
                                  != value)
    frame["loss_label"] = [f"{loss} ({label.replace('loss.', '')})" if label else loss
                           for loss, label in zip(frame["loss"], frame["loss_label"], strict=False)]
    order = ["dataset", "model", "setup", "loss_label", "lambda", "seed"]
    frame = frame.drop(columns=["settings", "row_keys"])
    return frame.sort_values(order, na_position="first").reset_index(drop=True)


def _labels(frame: pd.DataFrame, keep, group_by: list[str], shown=lambda key, value, row: True) -> list[str]:
    """Per row, ``key=value`` for the kept settings that differ within its group and that
    ``shown`` accepts (else '')."""
    rows = frame.to_dict("records")
    labels = [""] * len(rows)
    groups = frame.groupby(group_by, dropna=False, sort=False).ngroup().to_numpy()
    members: dict[int, list[int]] = {}
    for position, group in enumerate(groups):
        members.setdefault(group, []).append(position)
    for positions in members.values():
        varying = _varying_keys([rows[p] for p in positions], keep)
        digits = {k: _distinct_digits([rows[p]["settings"].get(k, MISSING) for p in positions])
                  for k in varying}
        # A setting that changes nothing in a run (m_per_class under the random sampler) is left
        # out of its label, unless that would give two setups one label.
        full = [_label(rows[p], varying, digits, shown, hide_inert=False) for p in positions]
        short = [_label(rows[p], varying, digits, shown, hide_inert=True) for p in positions]
        for p, text in zip(positions, short if len(set(short)) == len(set(full)) else full, strict=True):
            labels[p] = text
    return labels


def _label(row: dict, varying: list[str], digits: dict[str, int], shown, hide_inert: bool) -> str:
    settings = row["settings"]
    hidden = inert_settings(settings) if hide_inert else set()
    return ", ".join(f"{k}={_short(settings.get(k, MISSING), digits[k])}" for k in varying
                     if k not in hidden and shown(k, settings.get(k, MISSING), row))


def _distinct_digits(values: list[Any], fewest: int = 4) -> int:
    """The fewest significant digits (at least ``fewest``) at which the distinct floats among
    ``values`` still print distinct: an Optuna trial's T=0.9035278047694104 reads T=0.9035, and
    two values that differ only further on keep the digits that tell them apart (a label names a
    setup or a variant, so two must never merge)."""
    floats = {v for v in values if isinstance(v, float)}
    return next(d for d in range(fewest, 18) if len({_rounded(v, d) for v in floats}) == len(floats))


def _rounded(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, written as Python writes a float (1.0, not 1)."""
    return str(float(f"{value:.{digits}g}"))


def _varying_keys(rows: list[dict], keep) -> list[str]:
    """The sorted settings, kept by ``keep`` for at least one row, whose values are not all the same
    over ``rows`` (a row without the key has the value MISSING). Each row's value of each kept key
    is encoded once: the work grows with rows × settings, not with rows² as comparing every row's
    values with every other's did."""
    kept = {key for row in rows for key in row["settings"] if key not in row["row_keys"] and keep(key, row)}
    values: dict[str, set[str]] = {key: set() for key in kept}
    for row in rows:
        settings = row["settings"]
        for key in kept:
            values[key].add(_encode(settings[key]) if key in settings else _MISSING_ENCODED)
    return sorted(key for key, seen in values.items() if len(seen) > 1)


@cache
def _loss_defaults(loss: str) -> dict[str, Any]:
    """``loss.<key>``: value of conf/loss/<loss>.yaml ({} for a loss of another config tree)."""
    from latentexp.config.tree import group_option

    try:
        return {f"loss.{k}": v for k, v in group_option("loss", loss).items()}
    except KeyError:
        return {}


def _short(value: Any, digits: int = 17) -> str:
    if isinstance(value, bool):
        return str(value).lower()  # as YAML and the command line write it
    if isinstance(value, float):
        return _rounded(value, digits)
    return "null" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else str(value)

