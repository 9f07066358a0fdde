"""Magnet loss (Rippel et al. 2015; Eq. 4 of the Latent Boost paper), one cluster per class.

ℓ_n = max(0, d(n, own)/(2σ²) + α + log Σ_{c≠own} exp(−d(n, c)/(2σ²))), averaged over the
counted samples. σ² is the pooled within-class variance; the paper divides by 2σ² (public
ports that divide by 2σ⁴ square the variance again).
"""

from __future__ import annotations

import torch

from latentexp.losses.base import POSITIVE_AND_NEGATIVE, AuxiliaryLoss, at_least_float32, masked_mean
from latentexp.losses.clusters import MASKED, VARIANCE_FLOOR, batch_clusters


class MagnetLoss(AuxiliaryLoss):
    batch_needs = POSITIVE_AND_NEGATIVE

    def __init__(self, alpha: float = 1.0, variance_detach: bool = False, num_classes: int | None = None):
        super().__init__()
        self.alpha = alpha
        self.variance_detach = variance_detach
        self.num_classes = num_classes  # known: cluster statistics without a host sync

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = batch_clusters(at_least_float32(embeddings), labels, self.num_classes)
        self.count(c.counted)
        var = c.pooled_variance()
        if self.variance_detach:
            var = var.detach()
        two_var = 2.0 * var.clamp_min(VARIANCE_FLOOR)
        others = (-c.sq_dist / two_var).masked_fill(c.excluded, MASKED)
        per_sample = (c.own_dist / two_var + self.alpha + torch.logsumexp(others, dim=1)).relu()
        return masked_mean(per_sample, c.counted)
