"""torchvision ResNets with the CIFAR stem: 3x3 stride-1 first conv, no max-pool.

ResNet-50 (Latent Boost paper, 2048-d latent) and ResNet-18 (LACE and LMDL papers, 512-d).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from latentexp.models.base import ModelOutput


class CifarResNet(nn.Module):
    builder = staticmethod(resnet50)

    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int):
        super().__init__()
        net = self.builder(weights=None, num_classes=num_classes)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.body = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool,
            net.layer1, net.layer2, net.layer3, net.layer4,
            net.avgpool, nn.Flatten(),
        )
        self.classifier = net.fc
        dim = net.fc.in_features
        self.feature_dims = {"latent": dim, "penultimate": dim}

    def forward(self, x: torch.Tensor) -> ModelOutput:
        latent = self.body(x)
        return ModelOutput(self.classifier(latent), {"latent": latent, "penultimate": latent})


class ResNet50(CifarResNet):
    builder = staticmethod(resnet50)


class ResNet18(CifarResNet):
    builder = staticmethod(resnet18)
