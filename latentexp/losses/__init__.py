"""Losses, built by name: ``build_loss("latent_boost", **params)(embeddings, labels)``.

Every loss follows pytorch-metric-learning's calling convention, ``loss(embeddings, labels)``
returning a scalar; losses whose shape depends on the data (class weights, centres) receive
``num_classes`` and ``embedding_size`` from ``build_loss``.
"""

from __future__ import annotations

import inspect
from typing import Any

from latentexp.errors import ConfigError
from latentexp.losses.base import BatchLoss
from latentexp.losses.ce import CrossEntropyLoss
from latentexp.losses.center import CenterLoss
from latentexp.losses.corel import CorelCosineLoss, CorelGaussianLoss
from latentexp.losses.lace import LACELoss
from latentexp.losses.latent_boost import LatentBoostLoss, alpha_beta_schedule
from latentexp.losses.lmdl import LargeMarginDiscriminativeLoss
from latentexp.losses.magnet import MagnetLoss
from latentexp.losses.pml import (
    ArcFaceLoss,
    ContrastiveLoss,
    CosFaceLoss,
    NPairsLoss,
    SphereFaceLoss,
    TripletLoss,
)

LOSSES: dict[str, type[BatchLoss]] = {
    "ce": CrossEntropyLoss,
    "magnet": MagnetLoss,
    "latent_boost": LatentBoostLoss,
    "contrastive": ContrastiveLoss,
    "triplet": TripletLoss,
    "npair": NPairsLoss,
    "center": CenterLoss,
    "corel_gaussian": CorelGaussianLoss,
    "corel_cosine": CorelCosineLoss,
    "lace": LACELoss,
    "lmdl": LargeMarginDiscriminativeLoss,
    "arcface": ArcFaceLoss,
    "cosface": CosFaceLoss,
    "sphereface": SphereFaceLoss,
}

# Supplied by build_loss from the data and the model, never set in a loss config.
CONTEXT_PARAMETERS = ("num_classes", "embedding_size")


def _signature(name: str) -> list[str]:
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    params = inspect.signature(LOSSES[name]).parameters.values()
    return [p.name for p in params if p.name != "self" and p.kind not in variadic]


def loss_parameters(name: str) -> list[str]:
    """The parameters a user sets for loss ``name`` (its config keys)."""
    return [p for p in _signature(name) if p not in CONTEXT_PARAMETERS]


def check_loss_name_and_parameters(name: str, params: dict[str, Any]) -> None:
    if name not in LOSSES:
        raise ConfigError(f"Unknown loss {name!r}. Valid choices: {', '.join(sorted(LOSSES))}.")
    unknown = sorted(set(params) - set(loss_parameters(name)))
    if unknown:
        raise ConfigError(
            f"Loss {name!r} has no parameter {', '.join(unknown)}. Its parameters: "
            f"{', '.join(loss_parameters(name)) or 'none'}."
        )


def build_loss(name: str, num_classes: int | None = None, embedding_size: int | None = None,
               **params: Any) -> BatchLoss:
    check_loss_name_and_parameters(name, params)
    context = {"num_classes": num_classes, "embedding_size": embedding_size}
    signature = inspect.signature(LOSSES[name]).parameters
    for key in CONTEXT_PARAMETERS:
        if key in signature:
            if context[key] is not None:
                params[key] = int(context[key])
            elif signature[key].default is inspect.Parameter.empty:
                raise ConfigError(f"Loss {name!r} needs {key}=... (the trainer supplies it).")
    try:
        return LOSSES[name](**params)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"Bad parameters for loss {name!r}: {e}.") from None


__all__ = ["LOSSES", "BatchLoss", "alpha_beta_schedule", "build_loss", "check_loss_name_and_parameters",
           "loss_parameters"]
