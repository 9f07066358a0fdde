"""The Latent Boost paper's CNN for Fashion-MNIST (Appendix A.1)."""

from __future__ import annotations

import torch
from torch import nn

from latentexp.errors import ConfigError
from latentexp.models.base import ModelOutput
from latentexp.models.dropout import ByteDropout

LATENTS = ("dense", "global_max", "global_avg")


class PaperCNN(nn.Module):
    """Two conv blocks (3x3 conv, ReLU, 2x2 max-pool, dropout) with 32 and 64 channels, then the
    latent and a linear classifier. Where the 64-d latent sits (Appendix A.1 and §4.1 leave two
    readings, docs/models.md):

    - ``latent: dense`` (default): flatten the 64x7x7 map, a ``latent_dim``-unit linear layer with
      ReLU is the latent, and the classifier reads it;
    - ``latent: global_max`` / ``global_avg``: the map pooled to 64x1x1 and flattened is the latent
      ("from the flattening layer ... after the convolutional part", 64 dimensions), followed by a
      ``latent_dim``-unit linear layer with ReLU (the penultimate) and the classifier.

    Each block pools before its ReLU: max(ReLU(a), ReLU(b)) = ReLU(max(a, b)), and the gradient
    reaches the same element either way, so the numbers are those of conv, ReLU, pool, on a quarter
    of the elements (docs/speed.md). The dropout draws byte masks (models/dropout.py)."""

    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int,
                 latent_dim: int = 64, dropout: float = 0.25, latent: str = "dense"):
        super().__init__()
        self.check_settings(latent=latent, latent_dim=latent_dim, dropout=dropout)
        if min(image_size) < 4:
            raise ConfigError(f"The paper CNN halves the image twice (2x2 max-pooling), so it needs images "
                              f"of at least 4x4 pixels; these are {image_size[0]}x{image_size[1]}. "
                              "Resize them (dataset.image_size=28, where the dataset takes it) or choose "
                              "another model.")
        self.latent = latent
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(), ByteDropout(dropout),
            nn.Conv2d(32, 64, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(), ByteDropout(dropout),
            nn.Flatten(),
        )
        h, w = image_size
        if latent == "dense":
            self.embed = nn.Sequential(nn.Linear(64 * (h // 4) * (w // 4), latent_dim), nn.ReLU())
            self.feature_dims = {"latent": latent_dim, "penultimate": latent_dim}
        else:  # the flatten layer before the linear layers sees a 64x1x1 map
            pool = nn.AdaptiveMaxPool2d(1) if latent == "global_max" else nn.AdaptiveAvgPool2d(1)
            self.features.insert(len(self.features) - 1, pool)
            self.embed = nn.Sequential(nn.Linear(64, latent_dim), nn.ReLU())
            self.feature_dims = {"latent": 64, "penultimate": latent_dim}
        self.classifier = nn.Linear(latent_dim, num_classes)

    @classmethod
    def check_settings(cls, latent: str = "dense", latent_dim: int = 64, dropout: float = 0.25,
                       **_: object) -> None:
        """Before any work (validation): the latent is one of the readings, its width a positive
        whole number, the dropout a probability below 1."""
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ConfigError(f"model.latent_dim={latent_dim!r} is invalid: expected a positive integer (the "
                              "units of the CNN's dense layer, 64 in the paper).")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"model.dropout={dropout!r} is invalid: expected a probability in [0, 1) "
                              "(0.25 in the paper).")
        if latent not in LATENTS:
            raise ConfigError(f"model.latent={latent!r} is not a reading of the paper CNN's latent: choose "
                              f"{', '.join(LATENTS)} (docs/models.md).")

    def forward(self, x: torch.Tensor) -> ModelOutput:
        flat = self.features(x)
        hidden = self.embed(flat)
        latent = hidden if self.latent == "dense" else flat
        return ModelOutput(self.classifier(hidden), {"latent": latent, "penultimate": hidden})
