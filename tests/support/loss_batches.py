"""Small batches and losses for the loss tests: C classes, D-wide features, float64."""

import torch

from latentexp.config.components import build_loss

C, D = 5, 8


def linear(weight, bias) -> torch.nn.Linear:
    """A classifier layer with these weights (what LMDL reads from the model)."""
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer
def batch(seed=0, n=30, classes=C, d=D, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(classes, d, generator=g)[y] * 2 + torch.randn(n, d, generator=g)
    return x.to(dtype), y
def build(name, classifier=None, **params):
    if classifier is None:
        classifier = linear(torch.randn(C, D, dtype=torch.float64), torch.zeros(C, dtype=torch.float64))
    return build_loss(name, num_classes=C, embedding_size=D, classifier=classifier, **params).double()
