"""The angular margin contrastive loss (docs/losses/amc.md): naive loop, hand values, gradients where
arccos is not differentiable, what it pulls and pushes, its settings."""

import math

import pytest
import torch
from support.loss_batches import batch, build
from support.naive_losses import naive_amc

from latentexp.config.components import build_loss
from latentexp.errors import ConfigError


@pytest.mark.parametrize("pairs", ["halves", "all"])
@pytest.mark.parametrize("n", [30, 31, 2])
@pytest.mark.parametrize("margin", [0.5, 2.0])
def test_amc_matches_naive_loop(pairs, n, margin):
    # a small spread, so that same-class and different-class pairs both fall inside the margin
    x, y = batch(n % 7, n=n)
    x = x + 3.0
    expected = naive_amc(x.numpy(), y.numpy(), margin=margin, pairs=pairs)
    value = build("amc", margin=margin, pairs=pairs)(x, y).item()
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_amc_hand_values():
    """Unit vectors at angles 0, 0.3, 1.0 and π/2 + 0.2 rad; halves pair (0, 2) and (1, 3)."""
    angles = torch.tensor([0.0, 0.3, 1.0, math.pi / 2 + 0.2], dtype=torch.float64)
    lengths = torch.tensor([[1.0], [2.0], [3.0], [0.5]], dtype=torch.float64)  # AMC sees directions only
    x = torch.stack([angles.cos(), angles.sin()], 1) * lengths
    amc = build_loss("amc").double()
    # pair (0, 2): 1.0 rad apart; pair (1, 3): π/2 − 0.1 rad apart
    assert amc(x, torch.tensor([0, 1, 0, 1])).item() == pytest.approx((1.0**2 + (math.pi / 2 - 0.1) ** 2) / 2)
    assert amc(x, torch.tensor([0, 1, 2, 3])).item() == pytest.approx(0.0)  # both pairs beyond m_g = 0.5
    near = torch.stack([angles[:2].cos(), angles[:2].sin()], 1)  # 0.3 rad apart
    assert amc(near, torch.tensor([0, 0])).item() == pytest.approx(0.09)
    assert amc(near, torch.tensor([0, 1])).item() == pytest.approx(0.2**2)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("same_class", [True, False])
def test_amc_gradients_are_finite_where_arccos_is_not_differentiable(sign, same_class):
    """⟨z_i, z_j⟩ = ±1: identical and opposite directions, the clip keeps arccos' slope finite."""
    x = torch.tensor([[1.0, 2.0, 0.5], [sign * 2.0, sign * 4.0, sign * 1.0]], requires_grad=True)
    y = torch.tensor([0, 0 if same_class else 1])
    value = build_loss("amc")(x, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    expected = {(1.0, True): 0.0, (1.0, False): 0.25, (-1.0, True): math.pi**2, (-1.0, False): 0.0}
    # the clip at 1 − 1e-7 (float32: 1 − 1.2e-7) moves the angle by at most 5e-4 rad
    assert value.item() == pytest.approx(expected[(sign, same_class)], abs=2 * math.pi * 5e-4)


def test_amc_pulls_same_class_pairs_and_pushes_close_pairs_of_other_classes_apart():
    x = torch.tensor([[1.0, 0.0], [0.9, 0.3]], requires_grad=True)  # about 0.32 rad apart
    for label, closer in ((1, False), (0, True)):
        x.grad = None
        build_loss("amc")(x, torch.tensor([0, label])).backward()
        step = x.detach() - 0.01 * x.grad
        before = torch.nn.functional.cosine_similarity(x[:1], x[1:]).item()
        after = torch.nn.functional.cosine_similarity(step[:1], step[1:]).item()
        assert (after > before) == closer


def test_amc_counts_the_samples_it_pairs_and_rejects_bad_settings():
    amc = build_loss("amc")
    amc(torch.randn(7, 3), torch.arange(7) % 2)  # an odd batch: its last sample has no partner
    assert amc.epoch_stats()["counted_fraction"] == pytest.approx(6 / 7)
    with pytest.raises(ConfigError, match="halves, all"):
        build_loss("amc", pairs="random")
    with pytest.raises(ConfigError, match="radians"):
        build_loss("amc", margin=0.0)
