"""Which differences are real: cells compared over the seeds they share (report/stats.py), with
Holm's correction over the comparisons of each table. The λ-sweep tables compare every cell with
the baseline of its setup, the Table 2 summary each loss at its best λ with the baseline and
Latent Boost with Magnet, and the ablation table every variant with Latent Boost and the
baseline."""

from __future__ import annotations

import math

import pandas as pd

from latentexp.report.cells import SETUP_KEYS, is_baseline_cell, seed_values
from latentexp.report.stats import ALPHA, Paired, holm, paired

METRIC = "test_accuracy"
SIGNIFICANT = "*"
NOTE = (f"Δ: the mean paired difference over the seeds both cells finished (the same seed is the same "
        f"data split, initial weights and batch order), with its 95 % t interval; p: paired t-test (t) "
        f"and Wilcoxon signed-rank test (W), two-sided, Holm-adjusted over the comparisons of this "
        f"table; {SIGNIFICANT}: Holm-adjusted t-test p < {ALPHA}; (n = k): the comparison has fewer "
        f"seeds than the row's mean. With n seeds the Wilcoxon test cannot go below 2/2^n (0.0625 with "
        f"5 seeds); where every seed moved by the same amount the t-test is undefined (—).")
COLUMNS = ("n", "diff", "low", "high", "p_t", "p_w", "p_t_holm", "p_w_holm")


def against_baseline(cells: pd.DataFrame, runs: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """``cells`` with ``vs_baseline_*`` columns: each cell against its setup's baseline cell,
    Holm-adjusted within the setup (the family of one λ-sweep table)."""
    out = cells.copy()
    for column in COLUMNS:
        out[f"vs_baseline_{column}"] = math.nan
    for _, group in out.groupby(SETUP_KEYS, dropna=False, sort=False):
        baselines = group[group.apply(is_baseline_cell, axis=1)]
        if baselines.empty:
            continue
        reference = seed_values(runs, baselines.iloc[0], metric)
        others = [(index, cell) for index, cell in group.iterrows() if not is_baseline_cell(cell)]
        family = [paired(seed_values(runs, cell, metric), reference) for _, cell in others]
        for (index, _), values in zip(others, with_holm(family), strict=True):
            for column, value in zip(COLUMNS, values, strict=True):
                out.at[index, f"vs_baseline_{column}"] = value
    return out


def with_holm(family: list[Paired]) -> list[tuple]:
    """(n, diff, low, high, p_t, p_w, p_t Holm, p_w Holm) for each comparison of one family."""
    p_t, p_w = holm([c.p_t for c in family]), holm([c.p_w for c in family])
    return [(c.n, c.mean, c.low, c.high, c.p_t, c.p_w, t, w)
            for c, t, w in zip(family, p_t, p_w, strict=True)]


def diff_text(diff: float, low: float, high: float, p_t_holm: float, n=None, of=None, digits: int = 2) -> str:
    """``+0.52 [−0.13, +1.17]``, marked when the Holm-adjusted t-test is significant, and with
    ``(n = 3)`` when the comparison has fewer seeds (``n``) than the row's mean (``of``)."""
    if _missing(diff):
        return "—"
    seeds = f" (n = {int(n)})" if not _missing(n) and not _missing(of) and n < of else ""
    if _missing(low):
        return f"{diff:+.{digits}f}{seeds}"
    mark = SIGNIFICANT if not _missing(p_t_holm) and p_t_holm < ALPHA else ""
    return f"{diff:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]{mark}{seeds}"


def p_text(p_t: float, p_w: float) -> str:
    """``0.047; 0.125`` (t; W), or — where a test cannot be made."""
    if _missing(p_t) and _missing(p_w):
        return "—"
    return f"{_p(p_t)}; {_p(p_w)}"


def _p(p: float) -> str:
    return "—" if _missing(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
