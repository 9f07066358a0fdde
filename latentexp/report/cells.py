"""Table cells: one per (setup, loss, λ), with mean, standard deviation and seed counts.

± is the sample standard deviation over seeds (ddof = 1), as in the paper's tables. A cell with
fewer finished seeds than the sweep asked for is flagged ``complete = False``, never silently
averaged as if it were whole.
"""

from __future__ import annotations

import logging

import pandas as pd

from latentexp.runs.spec import BASELINE_LOSS

log = logging.getLogger("latentexp")

CELL_KEYS = ["dataset", "model", "setup", "loss", "loss_label", "lambda"]
SETUP_KEYS = ["dataset", "model", "setup"]


def metric_columns(runs: pd.DataFrame) -> list[str]:
    from latentexp.report.collect import RESULT_METRICS

    return [c for c in runs.columns if c in RESULT_METRICS or c.startswith("cluster.")]


def seeds_asked(runs: pd.DataFrame, asked: int | None = None) -> pd.Series:
    """Seeds each run's setup asked for: ``asked`` if given, else every seed seen in the setup."""
    if asked is not None:
        return pd.Series(asked, index=runs.index)
    return runs.groupby(SETUP_KEYS, dropna=False)["seed"].transform("nunique")


def summarise_cells(runs: pd.DataFrame, asked: int | None = None) -> pd.DataFrame:
    runs = runs.assign(_asked=seeds_asked(runs, asked))
    metrics = metric_columns(runs)
    rows = []
    for key, group in runs.groupby(CELL_KEYS, dropna=False, sort=True):
        finished = group[group["status"] == "finished"]
        if finished["seed"].duplicated().any():  # unlike runs that no label tells apart: never average
            log.warning("cell %s holds seed(s) %s twice; keeping one run each", key,
                        sorted(set(finished.loc[finished["seed"].duplicated(), "seed"])))
            finished = finished.drop_duplicates("seed")
        row = dict(zip(CELL_KEYS, key, strict=False))
        row["lambda"] = None if pd.isna(row["lambda"]) else float(row["lambda"])
        row.update({
            "seeds_asked": int(group["_asked"].iloc[0]),
            "n": len(finished),
            "n_failed": int((group["status"] == "failed").sum()),
            "n_started": int((group["status"] == "started").sum()),
            "seeds": " ".join(str(s) for s in sorted(finished["seed"])),
            "paper_settings": bool(group["paper_settings"].all()) if "paper_settings" in group else False,
        })
        # Runs of one format compute the same thing by design, but the reader should know when a
        # cell mixes code versions (a fix that forgot to bump the format would hide here).
        row["codes"] = " | ".join(sorted(set(finished["code"].dropna()))) if "code" in finished else ""
        row["mixed_code"] = "code" in finished and finished["code"].dropna().nunique() > 1
        precisions = finished["precision"].dropna() if "precision" in finished else pd.Series(dtype=str)
        row["precisions"] = " | ".join(sorted(set(precisions)))
        if "gmm_covariance" in finished:
            row["gmm_covariance"] = ", ".join(sorted(set(finished["gmm_covariance"].dropna())))
        row["complete"] = row["n"] >= row["seeds_asked"]
        row["loss_changes"] = group["loss_changes"].iloc[0] if "loss_changes" in group else ""
        values = finished[metrics].apply(pd.to_numeric, errors="coerce").astype(float)
        stats = values.agg(["count", "mean", "std"])
        for metric in metrics:  # std: ddof = 1, NaN for one seed
            row[f"{metric}_n"] = int(stats.at["count", metric])
            row[f"{metric}_mean"] = float(stats.at["mean", metric])
            row[f"{metric}_std"] = float(stats.at["std", metric])
        rows.append(row)
    return mark_mixed_precision(pd.DataFrame(rows))


def mark_mixed_precision(cells: pd.DataFrame) -> pd.DataFrame:
    """``mixed_precision`` on every cell of a setup whose finished seeds trained in more than one
    precision (bf16 and fp32, say): within a cell the mean mixes two computations, across its
    cells the comparisons (Δ, p, Improv.) do. Marked, never hidden."""
    if cells.empty:
        return cells.assign(mixed_precision=pd.Series(dtype=bool))
    used = cells["precisions"].map(lambda text: frozenset(filter(None, text.split(" | "))))
    kinds = used.groupby([cells[k] for k in SETUP_KEYS], dropna=False).transform(
        lambda sets: len(frozenset().union(*sets)))
    return cells.assign(mixed_precision=kinds > 1)


def best_cells(cells: pd.DataFrame, by: str = "val_accuracy_best_mean") -> pd.DataFrame:
    """Per setup and loss, the λ with the best mean validation accuracy (never test: that leaks).

    Complete cells are preferred; a loss with no complete cell falls back to its partial ones
    (still flagged incomplete). Ties go to the smaller λ. The baseline is its own single cell. A
    variant of a loss (parameters changed from its defaults, as in an ablation) is left out where
    the loss itself ran in the same setup: the ablation table compares it.
    """
    chosen = []
    scored = cells[(cells["n"] > 0) & (cells[by.replace("_mean", "_n")] == cells["n"])]  # no seed missing it
    scored = scored[~_shadowed_variant(scored)]
    for _, group in scored.groupby(["dataset", "model", "setup", "loss_label"], dropna=False):
        pool = group[group["complete"]] if group["complete"].any() else group
        pool = pool.sort_values([by, "lambda"], ascending=[False, True], na_position="last")
        chosen.append(pool.iloc[0])
    return pd.DataFrame(chosen).reset_index(drop=True) if chosen else cells.iloc[0:0]


def _shadowed_variant(cells: pd.DataFrame) -> pd.Series:
    """True for a cell with changed loss parameters whose loss also ran with its defaults."""
    keys = ["dataset", "model", "setup", "loss"]
    plain = {tuple(row) for row in cells.loc[cells["loss_changes"] == "", keys].itertuples(index=False)}
    present = pd.Series([tuple(row) in plain for row in cells[keys].itertuples(index=False)],
                        index=cells.index, dtype=bool)
    return (cells["loss_changes"] != "") & present


def is_baseline_cell(cell) -> bool:
    return cell["loss"] == BASELINE_LOSS


def cell_runs(runs: pd.DataFrame, cell) -> pd.DataFrame:
    """The finished runs of a cell."""
    same = (runs["status"] == "finished")
    for key in ("dataset", "model", "setup", "loss_label"):
        same &= runs[key] == cell[key]
    lam = cell["lambda"]
    same &= runs["lambda"].isna() if lam is None or pd.isna(lam) else (runs["lambda"] - lam).abs() < 1e-9
    return runs[same]


def seed_values(runs: pd.DataFrame, cell, metric: str) -> dict[int, float]:
    """``{seed: value}`` of a metric over a cell's finished runs."""
    mine = cell_runs(runs, cell).drop_duplicates("seed")
    return {int(s): float(v) for s, v in zip(mine["seed"], pd.to_numeric(mine[metric], errors="coerce"),
                                             strict=True)}
