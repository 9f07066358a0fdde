"""Losses, built by name: ``build_loss("latent_boost", **params)(embeddings, labels)``."""

from __future__ import annotations

import inspect
from typing import Any

from latentexp.errors import ConfigError
from latentexp.losses.base import BatchLoss
from latentexp.losses.ce import CrossEntropyLoss
from latentexp.losses.latent_boost import LatentBoostLoss, alpha_beta_schedule
from latentexp.losses.magnet import MagnetLoss

LOSSES: dict[str, type[BatchLoss]] = {
    "ce": CrossEntropyLoss,
    "magnet": MagnetLoss,
    "latent_boost": LatentBoostLoss,
}


def loss_parameters(name: str) -> list[str]:
    return [p for p in inspect.signature(LOSSES[name]).parameters if p != "self"]


def build_loss(name: str, **params: Any) -> BatchLoss:
    if name not in LOSSES:
        raise ConfigError(f"Unknown loss {name!r}. Valid choices: {', '.join(sorted(LOSSES))}.")
    unknown = sorted(set(params) - set(loss_parameters(name)))
    if unknown:
        raise ConfigError(
            f"Loss {name!r} has no parameter {', '.join(unknown)}. Its parameters: "
            f"{', '.join(loss_parameters(name)) or 'none'}."
        )
    return LOSSES[name](**params)


__all__ = ["LOSSES", "BatchLoss", "alpha_beta_schedule", "build_loss", "loss_parameters"]
