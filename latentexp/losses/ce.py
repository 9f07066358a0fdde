"""Softmax cross-entropy on the logits: the baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentexp.losses.base import BatchLoss, at_least_float32


class CrossEntropyLoss(BatchLoss):
    feature = "logits"
    auxiliary = False

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(at_least_float32(logits), labels)
