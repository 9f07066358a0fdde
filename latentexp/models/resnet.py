"""torchvision ResNet-50 with the CIFAR stem: 3x3 stride-1 first conv, no max-pool."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet50

from latentexp.models.base import ModelOutput


class ResNet50(nn.Module):
    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int):
        super().__init__()
        net = resnet50(weights=None, num_classes=num_classes)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.body = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool,
            net.layer1, net.layer2, net.layer3, net.layer4,
            net.avgpool, nn.Flatten(),
        )
        self.classifier = net.fc

    def forward(self, x: torch.Tensor) -> ModelOutput:
        latent = self.body(x)
        return ModelOutput(self.classifier(latent), {"latent": latent, "penultimate": latent})
