"""The two kinds of loss, and the one interface every loss follows: ``loss(features, labels) -> scalar``.

- An **auxiliary loss** shapes the features and is mixed with the model's cross-entropy by λ
  (Eq. 11, in ``latentexp.spec.eq11``); the model's own classifier predicts.
- A **head loss** replaces the classifier head: it owns its class weights (parameters the optimizer
  updates and the checkpoints save), it is the whole objective, and ``logits(features)`` are the
  class scores that predict.

``feature`` names the model output a loss reads (``latent``, ``penultimate`` or ``logits``). The
trainer supplies three context values to a loss whose constructor names them: ``num_classes``,
``embedding_size`` (the width of ``feature``) and ``classifier``, the model's final ``nn.Linear``,
which the loss reads but does not own (see ``borrow``).
"""

from __future__ import annotations

import torch
from torch import nn

# Constructor arguments the trainer supplies from the data and the model, never set in a config.
CONTEXT_PARAMETERS = ("num_classes", "embedding_size", "classifier")


class Loss(nn.Module):
    feature: str = "latent"

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Called before each epoch with E (from 0) and E_total; epoch-free losses ignore it."""

    def epoch_stats(self) -> dict[str, float]:
        """Diagnostics gathered since the last call (e.g. PCA components kept), then reset."""
        return {}

    def borrow(self, name: str, module: nn.Module) -> None:
        """Keep a reference to a module of the model without owning it: its parameters stay out of
        this loss's ``parameters()`` and ``state_dict()`` (the model optimises and saves them)."""
        object.__setattr__(self, name, module)


class AuxiliaryLoss(Loss):
    """Mixed with cross-entropy by λ: L = λ·L_aux + (1 − λ)·L_CE (Eq. 11)."""


class HeadLoss(Loss):
    """Replaces the classifier head; ``logits(features)`` are the class scores."""

    # The constructor parameter that plays λ's role, if any (COREL's ``lam``, which follows the
    # top-level ``lambda`` by default); the trainer's λ itself never reaches a head loss.
    lambda_parameter: str | None = None

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def loss_kind(loss_class: type) -> str:
    """``auxiliary`` or ``head``."""
    if issubclass(loss_class, HeadLoss):
        return "head"
    if issubclass(loss_class, AuxiliaryLoss):
        return "auxiliary"
    raise TypeError(f"{loss_class.__name__} is neither an AuxiliaryLoss nor a HeadLoss")


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; zero (still attached to the graph) if nothing counts."""
    return torch.where(mask, values, torch.zeros_like(values)).sum() / mask.sum().clamp_min(1)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Losses run in float32 (or wider) even when the model runs under bf16 autocast."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
