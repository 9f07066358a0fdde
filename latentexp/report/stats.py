"""Paired comparisons of two cells over the seeds they share (the same seed means the same data
split, initial weights and batch order whatever the loss or λ): the mean difference with its 95 %
t interval, the paired t-test and the Wilcoxon signed-rank test (scipy.stats), and Holm's
correction over the comparisons of one table."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class Paired:
    n: int  # seeds with a finite value in both cells
    mean: float  # mean of (a − b)
    low: float  # 95 % t interval of the mean difference
    high: float
    p_t: float  # paired t-test, two-sided; NaN when every seed moved by the same nonzero amount
    p_w: float  # Wilcoxon signed-rank, two-sided (exact for small n)


def paired(a: dict, b: dict) -> Paired:
    """``a`` against ``b``, each ``{seed: value}``; NaN where fewer than two seeds are shared."""
    seeds = sorted(s for s in set(a) & set(b) if _finite(a[s]) and _finite(b[s]))
    # Rounded: 90.1 − 90.0 is 0.0999…85 in floating point, which would split real ties in the
    # signed ranks and give an equal move on every seed a spurious spread.
    diff = np.round(np.array([a[s] - b[s] for s in seeds], dtype=float), 9)
    n = len(diff)
    if n < 2:
        mean = float(diff.mean()) if n else math.nan
        return Paired(n, mean, math.nan, math.nan, math.nan, math.nan)
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    if sd <= 1e-9 * max(1.0, abs(mean)):  # every seed moved by the same amount: t is undefined
        sd, p_t = 0.0, (1.0 if mean == 0 else math.nan)
    else:
        p_t = float(stats.ttest_1samp(diff, 0.0).pvalue)
    half = stats.t.ppf(1 - ALPHA / 2, n - 1) * sd / math.sqrt(n)
    p_w = 1.0 if not diff.any() else float(stats.wilcoxon(diff).pvalue)
    return Paired(n, mean, float(mean - half), float(mean + half), p_t, p_w)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment over the finite p-values (NaN stays NaN)."""
    indexed = sorted((p, i) for i, p in enumerate(pvalues) if _finite(p))
    m = len(indexed)
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p the exact signed-rank test can give with n pairs (2 / 2^n)."""
    return min(1.0, 2.0 / 2**n)


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)
