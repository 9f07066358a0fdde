"""Loop-based re-computations of the loss formulas, in float64, written from the equations."""

from __future__ import annotations

import math

import numpy as np


def sq(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a - b) ** 2).sum())


def naive_pca(x: np.ndarray, threshold: float) -> tuple[np.ndarray, int]:
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2
    k = 1
    if var.sum() > 0:
        cumulative = 0.0
        for i, v in enumerate(var):
            cumulative += v
            if cumulative / var.sum() >= threshold - 1e-6:
                k = i + 1
                break
    k = max(1, min(k, len(x) - 1, x.shape[1]))
    return centred @ vt[:k].T, k


def _clusters(x, y):
    classes = sorted(set(y.tolist()))
    means = {c: x[y == c].mean(0) for c in classes}
    counted = [i for i in range(len(x)) if (y == y[i]).sum() >= 2 and len(classes) >= 2]
    own = sum(sq(x[i], means[y[i]]) for i in counted)
    pooled = own / max(len(counted) - 1, 1)
    return classes, means, counted, pooled


def naive_magnet(x, y, alpha=1.0) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y)
    classes, means, counted, var = _clusters(x, y)
    var = max(var, 1e-12)
    losses = []
    for i in counted:
        num = math.exp(-sq(x[i], means[y[i]]) / (2 * var) - alpha)
        den = sum(math.exp(-sq(x[i], means[c]) / (2 * var)) for c in classes if c != y[i])
        losses.append(max(0.0, -math.log(num / den)))
    return float(np.mean(losses)) if losses else 0.0


def naive_latent_boost(x, y, *, pca=True, per_class_variance=True, alpha=2.0, beta=1.0,
                       eps=1e-8, hinge=False, T=0.95) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y)
    if pca:
        x, _ = naive_pca(x, T)
    classes, means, counted, pooled = _clusters(x, y)
    var = {}
    for c in classes:
        members = x[y == c]
        if per_class_variance and len(members) >= 2:
            var[c] = sum(sq(m, means[c]) for m in members) / (len(members) - 1)
        else:
            var[c] = pooled
        var[c] = max(var[c], 1e-12)
    losses = []
    for i in counted:
        num = math.exp(-sq(x[i], means[y[i]]) / (2 * var[y[i]]) - alpha)
        den = sum(math.exp(-beta * sq(x[i], means[c]) / (2 * var[c])) for c in classes if c != y[i])
        loss = -math.log(num / den + eps)
        losses.append(max(0.0, loss) if hinge else loss)
    return float(np.mean(losses)) if losses else 0.0
