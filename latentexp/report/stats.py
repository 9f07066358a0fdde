"""Paired comparisons of two cells over the seeds they share (the same seed means the same data
split, initial weights and batch order whatever the loss or λ): the mean difference with its 95 %
t interval, the paired t-test and the Wilcoxon signed-rank test (scipy.stats), Holm's correction
over the comparisons of one table, and what the seeds could have found: the smallest difference
the paired t-test detects with 80 % power, and the seeds it needs to detect the observed one
(the noncentral t distribution, scipy.stats.nct)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.8
MOST_SEEDS = 1000  # seeds_needed looks no further


@dataclass(frozen=True)
class Paired:
    n: int  # seeds with a finite value in both cells
    mean: float  # mean of (a − b)
    low: float  # 95 % t interval of the mean difference
    high: float
    p_t: float  # paired t-test, two-sided; NaN when every seed moved by the same nonzero amount
    p_w: float  # Wilcoxon signed-rank, two-sided (exact for small n)
    sd: float = math.nan  # sample standard deviation of the differences
    mde: float = math.nan  # minimum detectable difference: POWER at ALPHA with these n seeds and sd
    seeds_needed: float = math.nan  # seeds that detect ``mean`` with POWER (inf: never; NaN: undefined)


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
    power = (minimum_detectable(sd, n), seeds_needed(mean, sd))
    if sd <= 1e-9 * max(1.0, abs(mean)):  # every seed moved by the same amount: t is undefined
        sd, p_t = 0.0, (1.0 if mean == 0 else math.nan)
    else:
        p_t = float(stats.ttest_1samp(diff, 0.0).pvalue)
    half = stats.t.ppf(1 - ALPHA / 2, n - 1) * sd / math.sqrt(n)
    p_w = 1.0 if not diff.any() else float(stats.wilcoxon(diff).pvalue)
    return Paired(n, mean, float(mean - half), float(mean + half), p_t, p_w, sd, *power)


def t_test_power(effect: float, n: int, alpha: float = ALPHA) -> float:
    """The power of the two-sided paired t-test with ``n`` pairs when the true mean difference is
    ``effect`` standard deviations of the differences: both tails of the noncentral t."""
    df, shift = n - 1, abs(effect) * math.sqrt(n)
    critical = stats.t.ppf(1 - alpha / 2, df)
    # scipy's noncentral t gives NaN far in a tail: there the far tail is 0 and the near one is 1
    upper, lower = float(stats.nct.sf(critical, df, shift)), float(stats.nct.cdf(-critical, df, shift))
    return (upper if math.isfinite(upper) else 1.0) + (lower if math.isfinite(lower) else 0.0)


def minimum_detectable(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true mean difference that the paired t-test with ``n`` pairs detects with
    ``power``, where the differences have standard deviation ``sd``; NaN below two pairs."""
    if n < 2 or not _finite(sd):
        return math.nan
    if sd == 0:
        return 0.0
    high = 1.0
    while t_test_power(high, n, alpha) < power:  # bracket the root (the power grows with the effect)
        high *= 2
    effect = optimize.brentq(lambda e: t_test_power(e, n, alpha) - power, 0.0, high, xtol=1e-12)
    return float(sd * effect)


def seeds_needed(diff: float, sd: float, alpha: float = ALPHA, power: float = POWER,
                 most: int = MOST_SEEDS) -> float:
    """The fewest pairs (at least 2) with which the paired t-test detects a true mean difference
    ``diff`` with ``power``, where the differences have standard deviation ``sd``: inf when ``diff``
    is 0 or more than ``most`` pairs are needed, NaN when ``sd`` is 0 (the t-test is undefined)."""
    if not (_finite(diff) and _finite(sd)) or sd == 0:
        return math.nan
    effect = abs(diff) / sd
    if effect == 0 or t_test_power(effect, most, alpha) < power:
        return math.inf
    low, high = 1, 2  # power grows with n: double, then halve the gap
    while t_test_power(effect, high, alpha) < power:
        low, high = high, min(2 * high, most)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if t_test_power(effect, middle, alpha) >= power else (middle, high)
    return float(high)


def is_missing(value) -> bool:
    """None or NaN: a value a table shows as —."""
    return value is None or (isinstance(value, float) and math.isnan(value))


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
