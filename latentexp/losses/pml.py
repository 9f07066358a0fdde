"""Losses taken from pytorch-metric-learning, with the Latent Boost paper's Table 4 settings.

Note its defaults: LpDistance L2-normalises embeddings first (contrastive and triplet margins are
on the unit sphere); NPairsLoss uses the dot product of normalised embeddings and one pair per
label; ArcFace's margin is in degrees.
"""

from __future__ import annotations

import torch
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning.reducers import MeanReducer

from latentexp.losses.base import (
    PAIR,
    POSITIVE,
    POSITIVE_AND_NEGATIVE,
    AuxiliaryLoss,
    HeadLoss,
    at_least_float32,
    require,
)


class _PairLoss(AuxiliaryLoss):
    """An auxiliary metric loss on the latent (Eqs. 1-3)."""

    loss: torch.nn.Module

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.count(partners(labels, self.batch_needs))
        return self.loss(at_least_float32(embeddings), labels)


def partners(labels: torch.Tensor, needs: str) -> torch.Tensor:
    """Per sample, whether its batch holds the partners ``needs`` names (the pairs the library
    can mine for it)."""
    same = labels[:, None] == labels[None, :]
    positive = (same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)).any(1)
    negative = (~same).any(1)
    return {PAIR: positive | negative, POSITIVE: positive, POSITIVE_AND_NEGATIVE: positive & negative}[needs]


class ContrastiveLoss(_PairLoss):
    batch_needs = PAIR
    # pytorch-metric-learning, used as it is: boolean masks and data-dependent pair indices
    host_syncs = {"index:bool": 2, "index_put:bool": 1, "nonzero": 2}

    def __init__(self, pos_margin: float = 0.0, neg_margin: float = 1.0):
        super().__init__()
        self.loss = pml.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin)


class TripletLoss(_PairLoss):
    batch_needs = POSITIVE_AND_NEGATIVE
    host_syncs = {"index:bool": 1, "index_put:bool": 1, "nonzero": 1}

    def __init__(self, margin: float = 0.05, triplets_per_anchor: str | int = "all"):
        super().__init__()
        self.loss = pml.TripletMarginLoss(margin=margin, triplets_per_anchor=triplets_per_anchor)


class NPairsLoss(_PairLoss):
    batch_needs = POSITIVE
    host_syncs = {"nonzero": 2}

    def __init__(self):
        super().__init__()
        self.loss = pml.NPairsLoss(reducer=MeanReducer())


class _AngularMarginLoss(HeadLoss):
    """Replaces the classifier head: its class weights W are parameters and its logits predict."""

    host_syncs = {"index:bool": 1, "index_put:bool": 1}  # pytorch-metric-learning's boolean masks

    library_class: type[torch.nn.Module]

    def __init__(self, num_classes: int, embedding_size: int, margin: float, scale: float):
        super().__init__()
        self.loss = self.library_class(num_classes=num_classes, embedding_size=embedding_size,
                                       margin=margin, scale=scale)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(at_least_float32(embeddings), labels)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.loss.get_logits(at_least_float32(embeddings))


class ArcFaceLoss(_AngularMarginLoss):
    library_class = pml.ArcFaceLoss

    def __init__(self, num_classes: int, embedding_size: int, margin: float = 28.6, scale: float = 64.0):
        super().__init__(num_classes, embedding_size, margin, scale)


class CosFaceLoss(_AngularMarginLoss):
    library_class = pml.CosFaceLoss

    def __init__(self, num_classes: int, embedding_size: int, margin: float = 0.35, scale: float = 64.0):
        super().__init__(num_classes, embedding_size, margin, scale)


class _BlendedSphereFace(pml.SphereFaceLoss):
    """The library's A-Softmax with its target cosine ψ(θ) replaced by (λ_a·cos θ + ψ(θ))/(1 + λ_a)."""

    blend: torch.Tensor | float = 0.0  # λ_a of the current batch, set by SphereFaceLoss

    def modify_cosine_of_target_classes(self, cosine_of_target_classes):
        psi = super().modify_cosine_of_target_classes(cosine_of_target_classes)
        return (self.blend * cosine_of_target_classes + psi) / (1.0 + self.blend)


class SphereFaceLoss(_AngularMarginLoss):
    """A-Softmax (Liu et al. 2017) with the softmax annealing of its released Caffe code
    (MarginInnerProduct layer, sphereface_model.prototxt): the target logit is
    ‖x‖·(λ_a·cos θ + ψ(θ))/(1 + λ_a), λ_a = max(anneal_min, anneal_base·(1 + anneal_gamma·t)^−anneal_power)
    at training batch t = 1, 2, … (base 1000, gamma 0.12, power 1, min 5). ``anneal_base=0
    anneal_min=0`` is pytorch-metric-learning's un-annealed SphereFaceLoss.
    See docs/losses/angular_margin.md."""

    library_class = _BlendedSphereFace

    def __init__(self, num_classes: int, embedding_size: int, margin: float = 4.0, scale: float = 1.0,
                 anneal_base: float = 1000.0, anneal_gamma: float = 0.12, anneal_power: float = 1.0,
                 anneal_min: float = 5.0):
        super().__init__(num_classes, embedding_size, margin, scale)
        for parameter, value in (("anneal_base", anneal_base), ("anneal_gamma", anneal_gamma),
                                 ("anneal_power", anneal_power), ("anneal_min", anneal_min)):
            require(value >= 0, parameter, value, "a non-negative number", "It is an annealing constant.")
        self.anneal_base, self.anneal_gamma = anneal_base, anneal_gamma
        self.anneal_power, self.anneal_min = anneal_power, anneal_min
        # Training batches seen: a checkpointed buffer, so a resumed run continues the schedule.
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    def annealing_weight(self) -> torch.Tensor:
        """λ_a at the current iteration (a tensor on the loss's device: no host sync per batch)."""
        decayed = self.anneal_base * (1.0 + self.anneal_gamma * self.iteration.double()) ** -self.anneal_power
        return decayed.clamp_min(self.anneal_min)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.iteration += 1  # Caffe counts the batch before computing its λ_a: the first is t = 1
        features = at_least_float32(embeddings)
        self.loss.blend = self.annealing_weight().to(features.dtype)
        return self.loss(features, labels)

    def epoch_stats(self) -> dict[str, float]:
        return {**super().epoch_stats(), "sphereface_lambda": float(self.annealing_weight())}
