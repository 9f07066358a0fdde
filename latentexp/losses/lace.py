"""LACE (papers/lace.md Eq. 4): learnable class signatures S (C × d), background mean μ_b and
background covariance Σ_b = M·Mᵀ + floor·I; scores are cosines in the space whitened by Σ_b,
ŝ_cᵀx̂ with x̂ = normalise(W(x − μ_b)), ŝ_c = normalise(W s_c), through softmax cross-entropy
(no scale by default, the paper's choice).

The paper whitens with W = D^{-1/2}Uᵀ from Σ_b = U D Uᵀ. Any W with WᵀW = Σ_b⁻¹ gives the same
scores (the whitened vectors differ by a rotation, which keeps cosines), so we use the Cholesky
factor, W = L⁻¹ with Σ_b = L Lᵀ: the same numbers with gradients that stay finite when
eigenvalues are close. The floor (added to every eigenvalue) keeps W finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from latentexp.losses.base import HeadLoss, at_least_float32


class LACELoss(HeadLoss):
    def __init__(self, num_classes: int, embedding_size: int, scale: float = 1.0,
                 eigenvalue_floor: float = 1.0e-4):
        super().__init__()
        d = embedding_size
        self.scale, self.eigenvalue_floor = scale, eigenvalue_floor
        self.signatures = nn.Parameter(torch.randn(num_classes, d) / d**0.5)
        self.background_mean = nn.Parameter(torch.randn(d) * 0.01)
        # Starts near the identity: training begins as a plain cosine classifier.
        self.background_factor = nn.Parameter(torch.eye(d) + torch.randn(d, d) * 0.01 / d**0.5)

    def covariance(self) -> torch.Tensor:
        m = self.background_factor
        return m @ m.T + self.eigenvalue_floor * torch.eye(len(m), device=m.device, dtype=m.dtype)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        x = at_least_float32(embeddings)
        # cholesky_ex: the same factor, but a diverged (NaN) covariance gives NaN scores, and so a
        # run recorded as failed, instead of an exception.
        chol = torch.linalg.cholesky_ex(self.covariance()).L
        whiten = lambda v: torch.linalg.solve_triangular(chol, v.T, upper=False).T  # noqa: E731
        x_hat = F.normalize(whiten(x - self.background_mean), dim=1)
        s_hat = F.normalize(whiten(self.signatures), dim=1)
        return self.scale * x_hat @ s_hat.T

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(embeddings), labels)
