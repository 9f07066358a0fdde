"""Softmax cross-entropy on the logits: the baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentexp.losses.base import AuxiliaryLoss, at_least_float32


class CrossEntropyLoss(AuxiliaryLoss):
    """Mixed with itself by λ it is itself, so every λ gives the baseline (the run spec maps any
    ``loss=ce`` job to λ = 0, and the trainer then never calls it)."""

    feature = "logits"

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(at_least_float32(logits), labels)
