"""The two kinds of loss, and the one interface every loss follows: ``loss(features, labels) -> scalar``.

- An **auxiliary loss** shapes the features and is mixed with the model's cross-entropy by λ
  (Eq. 11, ``mix_with_cross_entropy``); the model's own classifier predicts.
- A **head loss** replaces the classifier head: it owns its class weights (parameters the optimizer
  updates and the checkpoints save), it is the whole objective, and ``logits(features)`` are the
  class scores that predict.

``feature`` names the model output a loss reads (``latent``, ``penultimate`` or ``logits``). The
trainer supplies three context values to a loss whose constructor names them: ``num_classes``,
``embedding_size`` (the width of ``feature``) and ``classifier``, the model's final ``nn.Linear``,
which the loss reads but does not own (see ``borrow``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

import torch
from torch import nn

T = TypeVar("T")


def mix_with_cross_entropy(lam: float, cross_entropy: T, auxiliary: Callable[[], T]) -> tuple[T, T | None]:
    """Eq. 11, the one place λ meets the losses: (λ·L_aux + (1 − λ)·L_CE, L_aux). At λ = 0 the
    auxiliary loss has no weight and is not computed (None)."""
    if lam == 0.0:
        return cross_entropy, None
    term = auxiliary()
    return lam * term + (1.0 - lam) * cross_entropy, term


# Constructor arguments the trainer supplies from the data and the model, never set in a config.
CONTEXT_PARAMETERS = ("num_classes", "embedding_size", "classifier")


# What a batch must hold for a loss to act on a sample (``Loss.batch_needs``).
PAIR = "another sample"
POSITIVE = "another sample of its class"
POSITIVE_AND_NEGATIVE = "another sample of its class and a sample of another class"


class Loss(nn.Module):
    feature: str = "latent"
    # What a sample's batch must hold for the loss to act on it (PAIR, POSITIVE,
    # POSITIVE_AND_NEGATIVE); None: it acts on every sample. Validation refuses batch settings
    # that can never provide it, the loss records which samples counted (``count``), and the
    # trainer fails a run in which an epoch went by without one.
    batch_needs: str | None = None
    # Said once when a run starts, where the logged loss can move against the accuracy by design.
    logged_loss_note: str | None = None
    # The host synchronisations one training step with this loss makes, by kind (what
    # scripts/host_syncs.py records; tests/test_host_syncs.py checks every loss against its own).
    host_syncs: ClassVar[dict[str, int]] = {}

    def __init__(self) -> None:
        super().__init__()
        self._counted: torch.Tensor | None = None  # on the device: no host sync per batch
        self._samples = 0

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Called before each epoch with E (from 0) and E_total; epoch-free losses ignore it."""

    def count(self, counted: torch.Tensor) -> None:
        """Record which samples of a training batch the loss acted on (a bool per sample)."""
        if self.training:
            total = counted.sum()
            self._counted = total if self._counted is None else self._counted + total
            self._samples += len(counted)

    def epoch_stats(self) -> dict[str, float]:
        """Diagnostics gathered since the last call, then reset: the fraction of training samples
        the loss acted on, and whatever a loss adds (Latent Boost: α, β, PCA components)."""
        if self._counted is None:
            return {}
        fraction = float(self._counted) / max(1, self._samples)
        self._counted, self._samples = None, 0
        return {"counted_fraction": fraction}

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


class ParameterError(ValueError):
    """A loss constructor's refusal of one argument, worded as validation words a config key (a
    loss's parameters are the keys of ``loss.*``), so that the message can reach the user as it is."""


def require(ok: bool, parameter: str, value: object, expected: str, why: str = "") -> None:
    """Refuse ``parameter=value`` unless ``ok``: ``loss.T=0 is invalid: expected a number in (0, 1].``"""
    if not ok:
        raise ParameterError(f"loss.{parameter}={value!r} is invalid: expected {expected}."
                             + (f" {why}" if why else ""))


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
