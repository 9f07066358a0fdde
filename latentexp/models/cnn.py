"""The Latent Boost paper's CNN for Fashion-MNIST (Appendix A.1)."""

from __future__ import annotations

import torch
from torch import nn

from latentexp.models.base import ModelOutput


class PaperCNN(nn.Module):
    """Two conv blocks (3x3 conv, ReLU, 2x2 max-pool, dropout) with 32 and 64 channels, flatten,
    a ``latent_dim``-unit linear layer with ReLU (the latent), and a linear classifier."""

    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int,
                 latent_dim: int = 64, dropout: float = 0.25):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
            nn.Flatten(),
        )
        h, w = image_size
        self.embed = nn.Sequential(nn.Linear(64 * (h // 4) * (w // 4), latent_dim), nn.ReLU())
        self.classifier = nn.Linear(latent_dim, num_classes)
        self.feature_dims = {"latent": latent_dim, "penultimate": latent_dim}

    def forward(self, x: torch.Tensor) -> ModelOutput:
        latent = self.embed(self.features(x))
        return ModelOutput(self.classifier(latent), {"latent": latent, "penultimate": latent})
