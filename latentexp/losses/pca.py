"""Per-batch PCA for Latent Boost (Eqs. 5-7)."""

from __future__ import annotations

import torch

# Cumulative ratios are compared with T up to float rounding, so T = 1 keeps exactly the rank.
RATIO_TOLERANCE = 1.0e-6


def components_for_threshold(singular_values: torch.Tensor, threshold: float, max_rank: int) -> int:
    """The fewest leading components whose cumulative explained variance reaches ``threshold``
    (Eq. 7), capped at ``max_rank``; 1 when the batch has no variance at all."""
    var = singular_values.double() ** 2
    total = var.sum()
    if total <= 0:
        return 1
    ratio = var.cumsum(0) / total
    k = int((ratio < threshold - RATIO_TOLERANCE).sum().item()) + 1
    return max(1, min(k, max_rank))


def pca_project(x: torch.Tensor, threshold: float, detach: bool = True) -> tuple[torch.Tensor, int]:
    """Project the batch onto its leading principal components.

    Returns the centred projection (distances are unchanged by centring) and the number of
    components kept. With ``detach`` the components are computed without gradient; the
    projection itself carries gradient to ``x``.
    """
    n, d = x.shape
    centred = x - x.mean(0, keepdim=True)
    source = centred.detach() if detach else centred
    _, s, vh = torch.linalg.svd(source, full_matrices=False)
    k = components_for_threshold(s, threshold, max_rank=min(n - 1, d))
    return centred @ vh[:k].T, k
