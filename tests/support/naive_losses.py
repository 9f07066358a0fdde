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


# ---------------------------------------------------------------- the other papers' losses


def naive_center(h, y, centers) -> float:
    return float(np.mean([0.5 * sq(h[i], centers[y[i]]) for i in range(len(h))]))


def naive_center_update(h, y, centers, rate):
    new = np.array(centers, dtype=np.float64, copy=True)
    for j in range(len(centers)):
        members = [h[i] for i in range(len(h)) if y[i] == j]
        pull = sum((m - centers[j] for m in members), np.zeros_like(new[j]))
        new[j] = centers[j] + rate * pull / (1 + len(members))
    return new


def naive_corel_gaussian(h, y, w, lam, gamma) -> float:
    losses = []
    for i in range(len(h)):
        s = [-gamma * sq(h[i], w[k]) for k in range(len(w))]
        top = max(s)
        losses.append(-lam * s[y[i]] + (1 - lam) * (top + math.log(sum(math.exp(v - top) for v in s))))
    return float(np.mean(losses))


def _cos(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def naive_corel_cosine(h, y, w, lam) -> float:
    losses = []
    for i in range(len(h)):
        repulse = max(_cos(h[i], w[k]) ** 2 for k in range(len(w)) if k != y[i])
        losses.append(-lam * _cos(h[i], w[y[i]]) + (1 - lam) * repulse)
    return float(np.mean(losses))


def naive_lace_logits(x, signatures, mean, factor, floor, scale=1.0):
    """The paper's whitening: Σ_b = U D Uᵀ, W = D^{-1/2} Uᵀ, cosines of W(x − μ_b) and W s_c."""
    cov = factor @ factor.T + floor * np.eye(len(factor))
    d, u = np.linalg.eigh(cov)
    whiten = np.diag(d ** -0.5) @ u.T
    out = np.zeros((len(x), len(signatures)))
    for n in range(len(x)):
        for c in range(len(signatures)):
            out[n, c] = scale * _cos(whiten @ (x[n] - mean), whiten @ signatures[c])
    return out


def naive_lmdl(h, y, w, b, *, delta_v=0.5, delta_d=6.0, alpha=1.0, beta=1.0, gamma_reg=1e-3,
               momentum="none", previous=None, seen=None, g=0.99) -> float:
    classes = sorted(set(y.tolist()))
    batch = {c: h[y == c].mean(0) for c in classes}
    moment = {}
    for c in classes:
        moment[c] = g * previous[c] + (1 - g) * batch[c] if (seen is not None and seen[c]) else batch[c]
    compact_c = batch if momentum == "none" else moment
    margin_c = moment if momentum == "both" else batch
    compact = np.mean([np.mean([max(0.0, np.linalg.norm(compact_c[c] - q) - delta_v) ** 2
                                for q in h[y == c]]) for c in classes])
    margins = []
    for c in classes:
        z = w @ margin_c[c] + b
        worst = max((z[j] - z[c]) / np.linalg.norm(w[c] - w[j]) for j in range(len(w)) if j != c)
        margins.append(max(0.0, delta_d + worst))
    reg = np.mean([np.linalg.norm(compact_c[c]) for c in classes])
    return float(alpha * compact + beta * np.mean(margins) + gamma_reg * reg)


def naive_amc(h, y, *, margin=0.5, pairs="halves") -> float:
    """AMC over the authors' pairs (i, i + ⌊N/2⌋) or every i < j, with their clip before arccos."""
    n = len(h)
    if pairs == "halves":
        chosen = [(i, i + n // 2) for i in range(n // 2)]
    else:
        chosen = [(i, j) for i in range(n) for j in range(i + 1, n)]
    losses = []
    for i, j in chosen:
        cosine = min(max(_cos(h[i], h[j]), -1 + 1e-7), 1 - 1e-7)
        d = math.acos(cosine)
        losses.append(d**2 if y[i] == y[j] else max(0.0, margin - d) ** 2)
    return float(np.mean(losses)) if losses else 0.0


def naive_annealed_sphereface(x, y, w, *, blend, margin=4) -> float:
    """A-Softmax with annealing, per sample: W's columns normalised, target logit
    ‖x‖·(λ_a·cos θ + ψ(θ))/(1 + λ_a) with ψ(θ) = (−1)^k cos(mθ) − 2k, k = ⌊mθ/π⌋; others ‖x‖·cos θ_j."""
    losses = []
    for i in range(len(x)):
        norm = float(np.linalg.norm(x[i]))
        logits = [norm * _cos(x[i], w[:, j]) for j in range(w.shape[1])]
        theta = math.acos(min(1.0, max(-1.0, _cos(x[i], w[:, y[i]]))))
        k = math.floor(margin * theta / math.pi)
        psi = (-1) ** k * math.cos(margin * theta) - 2 * k
        logits[y[i]] = norm * (blend * math.cos(theta) + psi) / (1 + blend)
        top = max(logits)
        losses.append(top + math.log(sum(math.exp(v - top) for v in logits)) - logits[y[i]])
    return float(np.mean(losses))
