"""Latent Boost (Eqs. 5-10): Magnet with PCA, per-class variances and α/β schedules.

ℓ_n = −log( exp(−d'(n, own)/(2σ²_own) − α) / Σ_{c≠own} exp(−β·d'(n, c)/(2σ²_c)) + ε ),
averaged over the counted samples; d' are squared distances after the PCA projection.
Each modification has a switch; with all three off, ``hinge=True`` and ``eps=0`` it is Magnet.
The hinge max(0, ·) is on by default (Magnet's {·}+, see docs/losses/cluster.md for why).
"""

from __future__ import annotations

import math

import torch

from latentexp.losses.base import POSITIVE_AND_NEGATIVE, AuxiliaryLoss, at_least_float32, masked_mean, require
from latentexp.losses.clusters import MASKED, VARIANCE_FLOOR, batch_clusters
from latentexp.losses.pca import pca_project


def alpha_beta_schedule(epoch: int, max_epochs: int, alpha0: float = 1.0, beta0: float = 1.0):
    """Eq. 9 with E counted from 0: α decays exponentially toward 1, β falls linearly to 0 at
    20 % of E_total and stays there."""
    alpha = 1.0 + alpha0 * math.exp(-epoch / (1.05 * max_epochs))
    beta = beta0 * max(0.0, 1.0 - epoch / (0.2 * max_epochs))
    return alpha, beta


class LatentBoostLoss(AuxiliaryLoss):
    batch_needs = POSITIVE_AND_NEGATIVE
    host_syncs = {"_linalg_eigh": 1}  # with PCA (the default); not eigh_ex, whose error check reads a flag
    SCHEDULE_NOTE = ("Latent Boost's term rises by design as training goes on: β (Eq. 9) falls to 0 by "
                     "20 % of trainer.max_epochs, taking away the credit for samples far from other "
                     "classes, and α decays toward 1. A rising loss with rising accuracy is the schedule "
                     "at work; the epoch line shows the cross-entropy and the term apart, with α and β.")

    @property
    def logged_loss_note(self) -> str | None:
        return self.SCHEDULE_NOTE if self.schedule else None  # without it, α and β stay as they are

    def __init__(
        self,
        pca: bool = True,
        per_class_variance: bool = True,
        schedule: bool = True,
        hinge: bool = True,
        pca_detach: bool = True,
        variance_detach: bool = False,
        T: float = 0.95,
        alpha0: float = 1.0,
        beta0: float = 1.0,
        alpha: float = 1.0,
        eps: float = 1.0e-8,
        num_classes: int | None = None,
    ):
        super().__init__()
        require(0 < T <= 1, "T", T, "a number in (0, 1]",
                "T is the cumulative explained-variance threshold of Eq. 7 (paper: 0.95).")
        for parameter, value in (("eps", eps), ("alpha0", alpha0), ("beta0", beta0)):
            require(value >= 0, parameter, value, "a non-negative number")
        self.num_classes = num_classes  # known: cluster statistics without a host sync
        self.pca, self.per_class_variance, self.schedule = pca, per_class_variance, schedule
        self.hinge, self.pca_detach, self.variance_detach = hinge, pca_detach, variance_detach
        self.T, self.alpha0, self.beta0, self.alpha, self.eps = T, alpha0, beta0, alpha, eps
        self.epoch, self.max_epochs = 0, 1
        # Components kept, summed on the device over the epoch's batches (read once per epoch).
        self._components_sum: torch.Tensor | None = None
        self._components_batches = 0

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        self.epoch, self.max_epochs = epoch, max_epochs

    def schedule_values(self) -> tuple[float, float]:
        """(α, β) for the current epoch; Magnet's (alpha, 1) with the schedule off."""
        if not self.schedule:
            return self.alpha, 1.0
        return alpha_beta_schedule(self.epoch, self.max_epochs, self.alpha0, self.beta0)

    def epoch_stats(self) -> dict[str, float]:
        alpha, beta = self.schedule_values()
        stats = {**super().epoch_stats(), "alpha": alpha, "beta": beta}
        if self._components_batches:
            stats["pca_components"] = float(self._components_sum) / self._components_batches
            self._components_sum, self._components_batches = None, 0
        return stats

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = at_least_float32(embeddings)
        if self.pca:
            x, kept = pca_project(x, self.T, detach=self.pca_detach)
            kept = kept.detach()
            self._components_sum = kept if self._components_sum is None else self._components_sum + kept
            self._components_batches += 1
        c = batch_clusters(x, labels, self.num_classes)
        self.count(c.counted)
        var = c.class_variances() if self.per_class_variance else c.pooled_variance().expand(len(c.counts))
        if self.variance_detach:
            var = var.detach()
        two_var = 2.0 * var.clamp_min(VARIANCE_FLOOR)
        alpha, beta = self.schedule_values()
        own = -c.own_dist / two_var[c.own_index] - alpha
        others = (-beta * c.sq_dist / two_var[None, :]).masked_fill(c.excluded, MASKED)
        log_ratio = own - torch.logsumexp(others, dim=1)
        if self.eps > 0:
            per_sample = -torch.logaddexp(log_ratio, torch.full_like(log_ratio, math.log(self.eps)))
        else:
            per_sample = -log_ratio
        if self.hinge:
            per_sample = per_sample.relu()
        return masked_mean(per_sample, c.counted)
