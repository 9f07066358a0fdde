"""Latent-space metrics."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import silhouette_score


def silhouette(latents: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette (Eq. 12) of the latents under the true labels: Euclidean, full dimension.

    NaN when undefined (fewer than 2 classes, or every sample its own class).
    """
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(labels):
        return float("nan")
    return float(silhouette_score(latents.astype(np.float64, copy=False), labels, metric="euclidean"))
