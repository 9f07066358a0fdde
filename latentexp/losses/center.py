"""Center loss (Wen et al. 2016; COREL Eq. 8): ½‖h_i − c_{y_i}‖² averaged over the batch.

The centres are a buffer, not optimizer parameters. After each training batch they move toward
the batch's features: c_j ← c_j + α_c·Σ_{y_i=j}(h_i − c_j)/(1 + n_j), α_c = 0.25 (COREL).
A centre starts at its class's batch mean the first time the class is seen (Decision: centres at
zero pull a ReLU latent onto the origin and kill it; see docs/losses/center.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentexp.losses.base import AuxiliaryLoss, at_least_float32


class CenterLoss(AuxiliaryLoss):
    def __init__(self, num_classes: int, embedding_size: int, center_rate: float = 0.25):
        super().__init__()
        self.center_rate = center_rate
        self.register_buffer("centers", torch.zeros(num_classes, embedding_size))
        self.register_buffer("seen", torch.zeros(num_classes, dtype=torch.bool))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = at_least_float32(embeddings)
        if self.training:
            counts, sums = self.class_sums(h.detach(), labels)
            self.initialise_new_centers(counts, sums)
        loss = 0.5 * (h - self.centers[labels].to(h.dtype)).pow(2).sum(1).mean()
        if self.training:
            self.update_centers(counts, sums)
        return loss

    @torch.no_grad()
    def class_sums(self, h: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples per class and the sum of each class's features, over all num_classes."""
        onehot = F.one_hot(labels, len(self.centers)).to(self.centers.dtype)  # (N, K)
        return onehot.sum(0), onehot.T @ h.to(self.centers.dtype)

    @torch.no_grad()
    def initialise_new_centers(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        # torch.where over every class, not `if new.any()` and a boolean mask: no host sync per batch
        new = (counts > 0) & ~self.seen
        self.centers.copy_(torch.where(new[:, None], sums / counts.clamp_min(1)[:, None], self.centers))
        self.seen |= counts > 0

    @torch.no_grad()
    def update_centers(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        pull = sums - counts[:, None] * self.centers  # Σ_{y_i=j} (h_i − c_j)
        self.centers += self.center_rate * pull / (1.0 + counts)[:, None]
