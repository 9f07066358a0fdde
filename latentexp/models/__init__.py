"""Backbones, one module each, each a class that takes ``(in_channels, image_size, num_classes,
**params)``, has a ``classifier`` linear layer and ``feature_dims``, and returns
``ModelOutput(logits, {"latent", "penultimate"})``. A backbone is named by a file of the ``model``
config group whose ``_target_`` is the class; by name, ``latentexp.config.components.build_model``."""

from latentexp.models.base import ModelOutput

__all__ = ["ModelOutput"]
