"""Gaussian- and Cosine-COREL (docs/losses/corel.md): naive loops, hand values, their λ and γ."""

import math

import pytest
import torch
from support.loss_batches import batch, build
from support.naive_losses import (
    naive_corel_cosine,
    naive_corel_gaussian,
)

from latentexp.config.components import build_loss
from latentexp.errors import ConfigError


@pytest.mark.parametrize("lam", [0.25, 0.85, 1.0])
def test_corel_gaussian_matches_naive_loop(lam):
    x, y = batch(3)
    loss = build("corel_gaussian", lam=lam, gamma=0.5)
    expected = naive_corel_gaussian(x.numpy(), y.numpy(), loss.weight.detach().numpy(), lam, 0.5)
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-9)


def test_corel_gaussian_with_lambda_one_is_the_nearest_centroid_squared_error():
    x, y = batch(4)
    loss = build("corel_gaussian", lam=1.0, gamma=0.5)
    expected = 0.5 * ((x - loss.weight[y]) ** 2).sum(1).mean()
    assert torch.allclose(loss(x, y), expected)
    assert torch.equal(loss.logits(x).argmax(1), torch.cdist(x, loss.weight).argmin(1))


@pytest.mark.parametrize("lam", [0.15, 0.5])
def test_corel_cosine_matches_naive_loop(lam):
    x, y = batch(5)
    loss = build("corel_cosine", lam=lam)
    expected = naive_corel_cosine(x.numpy(), y.numpy(), loss.weight.detach().numpy(), lam)
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-9)


def test_corel_learnable_gamma_is_a_parameter():
    assert "gamma" in dict(build("corel_gaussian", learnable_gamma=True).named_parameters())
    assert "gamma" not in dict(build("corel_gaussian").named_parameters())


def test_corel_rejects_lambda_zero():
    with pytest.raises(ConfigError, match=r"loss.lam=0.0 is invalid: expected a number in \(0, 1\]"):
        build("corel_gaussian", lam=0.0)


def test_cosine_repulsion_takes_the_largest_squared_cosine():
    # h = (1, 0); class vectors: own (1, 0), others (0.6, 0.8) cos 0.6 and (-0.9, 0.1) cos ≈ -0.99.
    loss = build_loss("corel_cosine", num_classes=3, embedding_size=2, lam=0.5)
    with torch.no_grad():
        loss.weight.copy_(torch.tensor([[1.0, 0.0], [0.6, 0.8], [-0.9, 0.1]]))
    cos_far = -0.9 / math.hypot(0.9, 0.1)
    value = loss(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert value.item() == pytest.approx(-0.5 * 1.0 + 0.5 * cos_far**2)
