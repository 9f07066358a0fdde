"""Backbones, built by name. Each returns ``ModelOutput(logits, {"latent", "penultimate"})``."""

from __future__ import annotations

from typing import Any

from torch import nn

from latentexp.errors import ConfigError
from latentexp.models.base import ModelOutput
from latentexp.models.cnn import PaperCNN
from latentexp.models.ffnn import FFNN
from latentexp.models.resnet import ResNet18, ResNet50
from latentexp.models.vgg import VGG16

MODELS: dict[str, type[nn.Module]] = {
    "cnn": PaperCNN,
    "vgg16": VGG16,
    "resnet50": ResNet50,
    "resnet18": ResNet18,
    "ffnn": FFNN,
}


def build_model(name: str, in_channels: int, image_size: tuple[int, int], num_classes: int,
                **params: Any) -> nn.Module:
    """Build a backbone adapted to the dataset's channels, image size and class count."""
    if name not in MODELS:
        raise ConfigError(f"Unknown model {name!r}. Valid choices: {', '.join(sorted(MODELS))}.")
    try:
        return MODELS[name](in_channels, tuple(image_size), num_classes, **params)
    except TypeError as e:
        raise ConfigError(f"Bad parameters for model {name!r}: {e}.") from None


__all__ = ["MODELS", "ModelOutput", "build_model"]
