"""Latent-space metrics, computed with torch on the run's device."""

from __future__ import annotations

import numpy as np
import torch

# Rows of the distance matrix held at once: one chunk × N buffer, built in place (160 MB at
# N = 10 000 in fp64).
SILHOUETTE_CHUNK = 2048


def silhouette(
    latents, labels, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> float:
    """Mean silhouette (Eq. 12) under ``labels``: Euclidean distances in full dimension.

    Exact, like scikit-learn's ``silhouette_score`` (a sample alone in its class scores 0), but
    on ``device`` in chunks of rows: a 10 000 × 2048 test set takes seconds on a GPU. float64 on
    the CPU, float32 on CUDA (on centred data, so the distance expansion loses little). NaN when
    undefined (fewer than 2 classes, or every sample its own class).
    """
    x = torch.as_tensor(np.asarray(latents) if not torch.is_tensor(latents) else latents)
    y = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels)
    device = torch.device(device) if device is not None else x.device
    dtype = dtype or (torch.float64 if device.type == "cpu" else torch.float32)
    x = x.to(device=device, dtype=dtype)
    _, index, counts = torch.unique(y.to(device), return_inverse=True, return_counts=True)
    n, k = len(index), len(counts)
    if k < 2 or k >= n:
        return float("nan")
    x = x - x.mean(0, keepdim=True)
    onehot = torch.nn.functional.one_hot(index, k).to(dtype)
    sq_norms = (x * x).sum(1)
    counts = counts.to(dtype)
    scores = torch.empty(n, dtype=dtype, device=device)
    for start in range(0, n, SILHOUETTE_CHUNK):
        rows = slice(start, min(start + SILHOUETTE_CHUNK, n))
        # ‖a‖² + ‖b‖² − 2ab in one buffer: addmm, then in-place adds, clamp and square root.
        dist = torch.addmm(sq_norms[None, :], x[rows], x.T, alpha=-2.0)
        dist.add_(sq_norms[rows, None]).clamp_min_(0).sqrt_()
        local = torch.arange(rows.stop - rows.start, device=device)
        dist[local, local + start] = 0.0  # a sample's distance to itself, exactly
        mean_to_class = (dist @ onehot) / counts  # (rows, K)
        own = index[rows]
        own_count = counts[own]
        a = mean_to_class.gather(1, own[:, None]).squeeze(1) * own_count / (own_count - 1).clamp_min(1)
        b = mean_to_class.scatter(1, own[:, None], float("inf")).min(1).values
        s = (b - a) / torch.maximum(a, b)
        scores[rows] = torch.where((own_count > 1) & torch.isfinite(s), s, torch.zeros_like(s))
    return float(scores.mean())
