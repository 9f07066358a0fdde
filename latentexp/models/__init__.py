"""Backbones, one module each, named by a file of the ``model`` config group whose ``_target_`` is
the class. Each takes ``(in_channels, image_size, num_classes, **params)``, has a ``classifier``
linear layer and ``feature_dims``, and returns ``ModelOutput(logits, {"latent", "penultimate"})``."""

from __future__ import annotations

from typing import Any

from torch import nn

from latentexp.config_tree import config_groups, group_option, instantiate
from latentexp.errors import ConfigError
from latentexp.models.base import ModelOutput


def build_model_from_config(node: Any, in_channels: int, image_size: tuple[int, int],
                            num_classes: int) -> nn.Module:
    """The backbone a config node names, adapted to the dataset's channels, image size and classes."""
    try:
        return instantiate(node, in_channels, tuple(image_size), num_classes)
    except TypeError as e:
        raise ConfigError(f"Bad parameters for model {node.get('name')!r}: {e}.") from None


def build_model(name: str, in_channels: int, image_size: tuple[int, int], num_classes: int,
                **params: Any) -> nn.Module:
    """Backbone ``name`` (conf/model/<name>.yaml's class) with ``params`` (class defaults for the rest)."""
    if name not in config_groups()["model"]:
        raise ConfigError(f"Unknown model {name!r}. Valid choices: {', '.join(config_groups()['model'])}.")
    node = {"_target_": group_option("model", name)["_target_"], "name": name, **params}
    return build_model_from_config(node, in_channels, image_size, num_classes)


__all__ = ["ModelOutput", "build_model", "build_model_from_config"]
