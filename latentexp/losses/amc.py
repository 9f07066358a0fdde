"""Angular margin contrastive loss, AMC (Choi, Som & Turaga, CVPRW 2020, arXiv:2004.09805), on the
latent projected onto the unit sphere, z = h/‖h‖. For a pair (i, j) with geodesic distance
d = arccos⟨z_i, z_j⟩:

  ℓ_ij = d²                  if y_i = y_j
  ℓ_ij = max(0, m_g − d)²    otherwise,

averaged over the pairs. Pairs follow the authors' code (github.com/hchoi71/AMC-Loss,
Train_AMC.py): the batch is split in halves and sample i meets sample i + ⌊N/2⌋ (``pairs:
halves``; an odd batch leaves its last sample out); ``pairs: all`` takes every i < j instead.
m_g = 0.5 rad is their ``geo_margin``. Details in docs/losses/amc.md.
"""

from __future__ import annotations

import torch

from latentexp.losses.base import PAIR, AuxiliaryLoss, at_least_float32, require

PAIRINGS = ("halves", "all")
# The authors clip ⟨z_i, z_j⟩ to [−1 + 1e-7, 1 − 1e-7] before arccos, whose derivative is infinite
# at ±1: the gradient stays finite (and is zero for a pair clipped there).
COSINE_CLIP = 1.0e-7
# tf.nn.l2_normalize's floor on the squared norm: a dead (all-zero) latent stays zero.
SQUARED_NORM_FLOOR = 1.0e-12


def unit(x: torch.Tensor) -> torch.Tensor:
    return x * (x * x).sum(1, keepdim=True).clamp_min(SQUARED_NORM_FLOOR).rsqrt()


def pair_indices(n: int, pairs: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The two ends of every pair of a batch of ``n``."""
    if pairs == "halves":
        first = torch.arange(n // 2, device=device)
        return first, first + n // 2
    first, second = torch.triu_indices(n, n, offset=1, device=device)
    return first, second


class AMCLoss(AuxiliaryLoss):
    batch_needs = PAIR

    def __init__(self, margin: float = 0.5, pairs: str = "halves"):
        super().__init__()
        require(pairs in PAIRINGS, "pairs", pairs, f"one of {', '.join(PAIRINGS)}")
        require(margin > 0, "margin", margin, "a positive number", "It is an angle in radians.")
        self.margin, self.pairs = margin, pairs

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = unit(at_least_float32(embeddings))
        first, second = pair_indices(len(z), self.pairs, z.device)
        counted = torch.zeros(len(z), dtype=torch.bool, device=z.device)
        counted[first] = True
        counted[second] = True
        self.count(counted)
        cosine = (z[first] * z[second]).sum(1).clamp(-1.0 + COSINE_CLIP, 1.0 - COSINE_CLIP)
        geodesic = torch.acos(cosine)
        same = labels[first] == labels[second]
        per_pair = torch.where(same, geodesic.pow(2), (self.margin - geodesic).relu().pow(2))
        return per_pair.sum() / max(1, len(per_pair))  # a single sample: zero, still on the graph
