"""VGG-16 for 32x32 images: torchvision's 13 conv layers, 512-d latent, three FC layers."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import vgg16, vgg16_bn

from latentexp.models.base import ModelOutput


class VGG16(nn.Module):
    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int,
                 batch_norm: bool = True, fc_width: int = 512, dropout: float = 0.5):
        super().__init__()
        layers = list((vgg16_bn if batch_norm else vgg16)(weights=None).features)
        layers[0] = nn.Conv2d(in_channels, 64, kernel_size=3, padding=1)
        # Skip max-pools that would shrink the map below 1x1 (images smaller than 32x32),
        # then pool whatever is left to 1x1 so the latent is always 512-d.
        size = min(image_size)
        kept = []
        for layer in layers:
            if isinstance(layer, nn.MaxPool2d):
                if size < 2:
                    continue
                size //= 2
            kept.append(layer)
        self.features = nn.Sequential(*kept, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(512, fc_width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(fc_width, num_classes)
        self.feature_dims = {"latent": 512, "penultimate": fc_width}

    def forward(self, x: torch.Tensor) -> ModelOutput:
        latent = self.features(x)
        penultimate = self.head(latent)
        return ModelOutput(self.classifier(penultimate), {"latent": latent, "penultimate": penultimate})
