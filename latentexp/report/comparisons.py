"""Which differences are real: cells compared over the seeds they share (report/stats.py), with
Holm's correction over the comparisons of each table. The λ-sweep tables compare every cell with
the baseline of its setup, the Table 2 summary each loss at its best λ with the baseline and
Latent Boost with Magnet, and the ablation table every variant with Latent Boost and the
baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from latentexp.report.cells import SETUP_KEYS, is_baseline_cell, seed_values
from latentexp.report.stats import ALPHA, MOST_SEEDS, POWER, Paired, holm, is_missing, paired

METRIC = "test_accuracy"
SIGNIFICANT = "*"
NOTE = (f"Δ: the mean paired difference over the seeds both cells finished (the same seed is the same "
        f"data split, initial weights and batch order), with its 95 % t interval; p: paired t-test (t) "
        f"and Wilcoxon signed-rank test (W), two-sided, Holm-adjusted over the comparisons of this "
        f"table; {SIGNIFICANT}: Holm-adjusted t-test p < {ALPHA}; (n = k): the comparison has fewer "
        f"seeds than the row's mean. With n seeds the Wilcoxon test cannot go below 2/2^n (0.0625 with "
        f"5 seeds); where every seed moved by the same amount the t-test is undefined (—).")
_POWER = f"{round(100 * POWER)} %"
POWER_NOTE = (f"MDE; seeds: the smallest true difference (points of accuracy) that the paired t-test, "
              f"two-sided at α = {ALPHA} before Holm's correction, detects with {_POWER} power with this "
              f"comparison's seeds, given the observed standard deviation of its paired differences; and "
              f"how many seeds the same test needs to detect the observed Δ with {_POWER} power (∞ where "
              f"Δ is 0 or more than {MOST_SEEDS} would be needed). — where the t-test cannot be made. A "
              f"Δ below its MDE that is not significant says too few seeds, not no effect.")
# A comparison's fields as columns of the cells table (against_baseline): vs_baseline_<column>.
COLUMNS = {"n": "n", "mean": "diff", "low": "low", "high": "high", "p_t": "p_t", "p_w": "p_w", "sd": "sd",
           "mde": "mde", "seeds_needed": "seeds_needed"}  # Paired's field: its column
HOLM_COLUMNS = ("p_t_holm", "p_w_holm")


@dataclass(frozen=True)
class Comparison:
    """One paired comparison of a family (one table) with its Holm-adjusted p-values."""

    test: Paired
    p_t_holm: float
    p_w_holm: float

    def columns(self, prefix: str) -> dict[str, float]:
        """The fields as ``{prefix + column: value}``, for the cells table."""
        values = {column: getattr(self.test, field) for field, column in COLUMNS.items()}
        values |= {column: getattr(self, column) for column in HOLM_COLUMNS}
        return {f"{prefix}{column}": value for column, value in values.items()}

    @classmethod
    def from_columns(cls, row, prefix: str) -> Comparison | None:
        """The comparison ``columns(prefix)`` stored in a row; None where the row has none."""
        if f"{prefix}n" not in row or is_missing(row[f"{prefix}n"]):
            return None
        fields = {field: row[f"{prefix}{column}"] for field, column in COLUMNS.items()}
        return cls(Paired(**{**fields, "n": int(fields["n"])}), *(row[f"{prefix}{h}"] for h in HOLM_COLUMNS))

    def texts(self, of=None) -> tuple[str, str, str]:
        """The table cells: Δ with its interval (``of``: the seeds of the row's mean), the
        Holm-adjusted p-values, and the minimum detectable difference with the seeds needed."""
        t = self.test
        return (diff_text(t.mean, t.low, t.high, self.p_t_holm, t.n, of),
                p_text(self.p_t_holm, self.p_w_holm), power_text(t.mde, t.seeds_needed))


def against_baseline(cells: pd.DataFrame, runs: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """``cells`` with ``vs_baseline_*`` columns (Comparison.columns): each cell against its setup's
    baseline cell, Holm-adjusted within the setup (the family of one λ-sweep table)."""
    prefix = "vs_baseline_"
    out = cells.copy()
    for column in (*COLUMNS.values(), *HOLM_COLUMNS):
        out[f"{prefix}{column}"] = math.nan
    for _, group in out.groupby(SETUP_KEYS, dropna=False, sort=False):
        baselines = group[group.apply(is_baseline_cell, axis=1)]
        if baselines.empty:
            continue
        reference = seed_values(runs, baselines.iloc[0], metric)
        others = [(index, cell) for index, cell in group.iterrows() if not is_baseline_cell(cell)]
        family = [paired(seed_values(runs, cell, metric), reference) for _, cell in others]
        for (index, _), comparison in zip(others, with_holm(family), strict=True):
            for column, value in comparison.columns(prefix).items():
                out.at[index, column] = value
    return out


def with_holm(family: list[Paired]) -> list[Comparison]:
    """Each comparison of one family with its p-values Holm-adjusted over the family."""
    p_t, p_w = holm([c.p_t for c in family]), holm([c.p_w for c in family])
    return [Comparison(c, t, w) for c, t, w in zip(family, p_t, p_w, strict=True)]


def diff_text(diff: float, low: float, high: float, p_t_holm: float, n=None, of=None, digits: int = 2) -> str:
    """``+0.52 [−0.13, +1.17]``, marked when the Holm-adjusted t-test is significant, and with
    ``(n = 3)`` when the comparison has fewer seeds (``n``) than the row's mean (``of``)."""
    if is_missing(diff):
        return "—"
    seeds = f" (n = {int(n)})" if not is_missing(n) and not is_missing(of) and n < of else ""
    if is_missing(low):
        return f"{diff:+.{digits}f}{seeds}"
    mark = SIGNIFICANT if not is_missing(p_t_holm) and p_t_holm < ALPHA else ""
    return f"{diff:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]{mark}{seeds}"


def power_text(mde: float, seeds: float) -> str:
    """``0.61; 9`` (the minimum detectable difference; the seeds that detect the observed Δ), or —
    where the t-test cannot be made (fewer than two seeds, or every seed moved alike)."""
    if is_missing(mde) or is_missing(seeds):
        return "—"
    return f"{mde:.2f}; {'∞' if math.isinf(seeds) else int(seeds)}"


def p_text(p_t: float, p_w: float) -> str:
    """``0.047; 0.125`` (t; W), or — where a test cannot be made."""
    if is_missing(p_t) and is_missing(p_w):
        return "—"
    return f"{_p(p_t)}; {_p(p_w)}"


def _p(p: float) -> str:
    return "—" if is_missing(p) else "<0.001" if p < 0.001 else f"{p:.3f}"
