"""Large-margin discriminative loss, LMDL (papers/large_margin_discriminative.md Eqs. 4.3-4.7),
on the penultimate features h with the final linear layer's W, b:

  L = α·L_compact + β·L_margin + γ_reg·L_reg
  L_compact = mean_c mean_{q∈c} max(0, ‖M_c − q‖ − δ_v)²
  L_margin  = mean_c max(0, δ_d + max_{j≠c} (z_j − z_c)/‖w_c − w_j‖),   z = W m_c + b
  L_reg     = mean_c ‖M_c‖

over the classes c of the batch. m_c is the batch centroid (with gradient). With momentum, M_c
is γ·M_c(prev) + (1 − γ)·m_c, where M_c(prev) is a detached, checkpointed buffer (set to m_c the
first time class c is seen, untouched for classes absent from the batch), so gradient reaches
the features through (1 − γ)·m_c, as in the paper's Proposition 4.3. ``momentum`` picks where
momentum centroids are used: ``partial`` (the paper's choice) for L_compact and L_reg, batch
centroids for L_margin; ``none`` batch centroids everywhere; ``both`` momentum centroids
everywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from latentexp.losses.base import AuxiliaryLoss, at_least_float32, require
from latentexp.losses.clusters import MASKED, class_onehot

MOMENTUM_MODES = ("partial", "none", "both")
_TINY = 1.0e-12  # inside square roots, so that gradients at zero distance stay finite


def safe_norm(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return (x * x).sum(dim).clamp_min(_TINY).sqrt()


class LargeMarginDiscriminativeLoss(AuxiliaryLoss):
    """``classifier`` is the model's final linear layer (W, b), read at every call, never owned."""

    feature = "penultimate"

    def __init__(self, num_classes: int, embedding_size: int, classifier: nn.Linear, alpha: float = 1.0,
                 beta: float = 1.0, gamma_reg: float = 1.0e-3, delta_v: float = 0.5, delta_d: float = 6.0,
                 momentum: str = "partial", centroid_momentum: float = 0.99):
        super().__init__()
        self.borrow("classifier", classifier)
        require(momentum in MOMENTUM_MODES, "momentum", momentum, f"one of {', '.join(MOMENTUM_MODES)}")
        self.alpha, self.beta, self.gamma_reg = alpha, beta, gamma_reg
        self.delta_v, self.delta_d = delta_v, delta_d
        self.momentum, self.centroid_momentum = momentum, centroid_momentum
        self.register_buffer("centroids", torch.zeros(num_classes, embedding_size))
        self.register_buffer("seen", torch.zeros(num_classes, dtype=torch.bool))

    def momentum_centroids(self, present: torch.Tensor, batch_centroids: torch.Tensor) -> torch.Tensor:
        """M_c for every class: blended where the class was seen before, m_c where it is new; the
        buffer moves only for the classes in the batch."""
        previous = self.centroids.to(batch_centroids.dtype)
        g = self.centroid_momentum
        seen = self.seen[:, None].clone()  # autograd keeps the mask; the buffer changes below
        blended = torch.where(seen, g * previous + (1.0 - g) * batch_centroids, batch_centroids)
        if self.training:
            kept = torch.where(present[:, None], blended.detach().to(self.centroids.dtype), self.centroids)
            self.centroids.copy_(kept)
            self.seen.logical_or_(present)
        return blended

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # One row per class of the dataset, the absent ones masked out of every mean: no shape
        # depends on the batch's labels, so no step waits for the device (torch.unique would).
        h = at_least_float32(embeddings)
        weight = self.classifier.weight.to(h.dtype)
        bias = self.classifier.bias
        bias = torch.zeros(len(weight), device=h.device, dtype=h.dtype) if bias is None else bias.to(h.dtype)
        onehot = class_onehot(labels, len(self.centroids), h.dtype)  # (N, C)
        counts = onehot.sum(0)
        present = counts > 0
        batch_centroids = (onehot.T @ h) / counts.clamp_min(1)[:, None]
        moment = self.momentum_centroids(present, batch_centroids) if self.momentum != "none" else None
        compact_centroids = batch_centroids if moment is None else moment
        margin_centroids = moment if self.momentum == "both" else batch_centroids

        spread = (safe_norm(h - compact_centroids[labels]) - self.delta_v).relu().pow(2)  # (N,)
        compact = present_mean((onehot.T @ spread) / counts.clamp_min(1), present)

        z = margin_centroids @ weight.T + bias  # (C, C): scores of each centroid
        w_gap = safe_norm(weight[:, None, :] - weight[None, :, :])  # (C, C) ‖w_c − w_j‖
        own = torch.eye(len(weight), dtype=torch.bool, device=h.device)
        signed = ((z - z.diagonal()[:, None]) / w_gap).masked_fill(own, MASKED)
        margin = present_mean((self.delta_d + signed.max(dim=1).values).relu(), present)

        reg = present_mean(safe_norm(compact_centroids), present)
        return self.alpha * compact + self.beta * margin + self.gamma_reg * reg


def present_mean(per_class: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """The mean over the classes in the batch (where, not a product: an absent row adds nothing)."""
    return torch.where(present, per_class, torch.zeros_like(per_class)).sum() / present.sum()
