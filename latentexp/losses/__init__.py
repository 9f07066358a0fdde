"""Losses: one module each, of two kinds (``AuxiliaryLoss``, mixed with cross-entropy by λ, and
``HeadLoss``, its own logits), each a class that takes plain values. A loss is named by a file of
the ``loss`` config group whose ``_target_`` is the class (``conf/loss/<name>.yaml``); by name,
``latentexp.config.components.build_loss("latent_boost", T=0.9)(features, labels)``. There is no
registry to edit (docs/losses/README.md, "Adding a loss").
"""

from __future__ import annotations

import inspect

from latentexp.losses.base import CONTEXT_PARAMETERS, AuxiliaryLoss, HeadLoss, Loss, ParameterError, loss_kind


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """A class's named constructor parameters (no ``self``, ``*args`` or ``**kwargs``)."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {p.name: p for p in inspect.signature(cls).parameters.values()
            if p.name != "self" and p.kind not in variadic}


def loss_parameters(cls: type) -> list[str]:
    """The parameters a user sets for a loss class (its config keys)."""
    return [p for p in constructor_parameters(cls) if p not in CONTEXT_PARAMETERS]


__all__ = ["CONTEXT_PARAMETERS", "AuxiliaryLoss", "HeadLoss", "Loss", "ParameterError",
           "constructor_parameters", "loss_kind", "loss_parameters"]
