"""COREL (Kenyon-Dean et al.; papers/corel.md Eqs. 1-6): a head of class vectors W (K × H, no bias)
trained by an attractive-repulsive loss, predicting by argmax of its similarity.

Gaussian:  s_k = −γ‖h − w_k‖²,   ℓ = −λ·s(h, w_y) + (1 − λ)·log Σ_k exp s(h, w_k)
Cosine:    s_k = cos(h, w_k),    ℓ = −λ·s(h, w_y) + (1 − λ)·max_{k≠y} s(h, w_k)²
λ is applied once (the authors' public code applies it twice), and the repulsion is the largest
squared cosine (the authors' code squares the largest cosine, floored at 0): docs/losses/corel.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from latentexp.losses.base import HeadLoss, at_least_float32, require
from latentexp.losses.clusters import MASKED, squared_distances


class _CorelLoss(HeadLoss):
    lambda_parameter = "lam"

    def __init__(self, num_classes: int, embedding_size: int, lam: float):
        super().__init__()
        require(0.0 < lam <= 1.0, "lam", lam, "a number in (0, 1]",
                "COREL's λ weighs attraction against repulsion (it follows the top-level lambda).")
        self.lam = lam
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_size))


class CorelGaussianLoss(_CorelLoss):
    def __init__(self, num_classes: int, embedding_size: int, lam: float = 0.5, gamma: float = 0.5,
                 learnable_gamma: bool = False):
        super().__init__(num_classes, embedding_size, lam)
        gamma_tensor = torch.tensor(float(gamma))
        if learnable_gamma:
            self.gamma = nn.Parameter(gamma_tensor)
        else:
            self.register_buffer("gamma", gamma_tensor)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return -self.gamma * squared_distances(at_least_float32(embeddings), self.weight)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        s = self.logits(embeddings)
        attract = s.gather(1, labels[:, None]).squeeze(1)
        return (-self.lam * attract + (1.0 - self.lam) * torch.logsumexp(s, dim=1)).mean()


class CorelCosineLoss(_CorelLoss):
    def __init__(self, num_classes: int, embedding_size: int, lam: float = 0.5):
        super().__init__(num_classes, embedding_size, lam)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        # Each class vector (row of W) is normalised, as in the authors' code since 2019-03-31.
        return F.normalize(at_least_float32(embeddings), dim=1) @ F.normalize(self.weight, dim=1).T

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.logits(embeddings)
        own = F.one_hot(labels, cos.shape[1]).bool()
        attract = cos.gather(1, labels[:, None]).squeeze(1)  # not cos[own]: no host sync
        repulse = (cos * cos).masked_fill(own, MASKED).max(dim=1).values
        return (-self.lam * attract + (1.0 - self.lam) * repulse).mean()
