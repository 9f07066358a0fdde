"""The interface every loss follows: ``loss(embeddings, labels) -> scalar``."""

from __future__ import annotations

import torch
from torch import nn


class BatchLoss(nn.Module):
    """A loss on one batch of features.

    ``feature`` names the model output it reads (``latent``, ``penultimate`` or ``logits``).
    ``auxiliary`` losses are mixed with cross-entropy by λ (Eq. 11); the others are the whole
    objective on their own. A loss that ``predicts`` replaces the classifier head: it owns its
    parameters and its ``logits(features)`` are the model's class scores. A loss that
    ``uses_classifier`` is also given the final linear layer's ``weight`` and ``bias``.
    Losses that need them take ``num_classes`` and ``embedding_size`` as constructor arguments;
    the registry supplies both.
    """

    feature: str = "latent"
    auxiliary: bool = True
    predicts: bool = False
    uses_classifier: bool = False
    # A head-replacing loss whose own parameter of this name plays λ's role (COREL's ``lam``).
    lambda_param: str | None = None

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} does not replace the classifier head")

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Called before each epoch with E (from 0) and E_total; epoch-free losses ignore it."""

    def epoch_stats(self) -> dict[str, float]:
        """Diagnostics gathered since the last call (e.g. PCA components kept), then reset."""
        return {}


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; zero (still attached to the graph) if nothing counts."""
    return torch.where(mask, values, torch.zeros_like(values)).sum() / mask.sum().clamp_min(1)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Losses run in float32 (or wider) even when the model runs under bf16 autocast."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
