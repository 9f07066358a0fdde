"""COREL's feed-forward network: flatten, two hidden layers of 128 ReLU units, a linear classifier.
The second hidden layer is the latent."""

from __future__ import annotations

import math

import torch
from torch import nn

from latentexp.models.base import ModelOutput


class FFNN(nn.Module):
    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int,
                 hidden: int = 128, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * math.prod(image_size), hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(),
        )
        self.classifier = nn.Linear(hidden, num_classes)
        self.feature_dims = {"latent": hidden, "penultimate": hidden}

    def forward(self, x: torch.Tensor) -> ModelOutput:
        latent = self.body(x)
        return ModelOutput(self.classifier(latent), {"latent": latent, "penultimate": latent})
