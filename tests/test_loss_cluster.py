"""Magnet and Latent Boost (docs/losses/cluster.md), and the PCA of Eq. 7: naive loops, hand values,
the α/β schedules, precision, degenerate batches."""

import math

import numpy as np
import pytest
import torch
from support.naive_losses import (
    naive_latent_boost,
    naive_magnet,
    naive_pca,
)

from latentexp.config.components import build_loss
from latentexp.losses.latent_boost import alpha_beta_schedule
from latentexp.losses.pca import components_for_threshold, pca_project


def random_batch(seed, n=48, d=12, classes=5, singletons=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    if singletons:  # add classes that appear once
        labels = torch.cat([labels[: n - singletons], torch.arange(classes, classes + singletons)])
    centres = torch.randn(classes + singletons, d, generator=g) * 1.5
    x = centres[labels] + torch.randn(n, d, generator=g)
    return x.double(), labels


def rel_close(a, b, rtol=1e-5, atol=1e-6):
    return abs(float(a) - float(b)) <= atol + rtol * abs(float(b))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("singletons", [0, 2])
def test_magnet_matches_naive_loop(seed, singletons):
    x, y = random_batch(seed, singletons=singletons)
    ours = build_loss("magnet", alpha=1.0)(x, y)
    assert rel_close(ours, naive_magnet(x.numpy(), y.numpy(), alpha=1.0))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("pca", [False, True])
@pytest.mark.parametrize("per_class_variance", [False, True])
@pytest.mark.parametrize("hinge", [False, True])
@pytest.mark.parametrize("epoch", [0, 3, 30])
def test_latent_boost_matches_naive_loop(seed, pca, per_class_variance, hinge, epoch):
    x, y = random_batch(seed, n=40, d=10, classes=4, singletons=seed % 2)
    loss = build_loss("latent_boost", pca=pca, per_class_variance=per_class_variance, hinge=hinge)
    loss.set_epoch(epoch, 30)
    alpha, beta = alpha_beta_schedule(epoch, 30)
    expected = naive_latent_boost(x.numpy(), y.numpy(), pca=pca, per_class_variance=per_class_variance,
                                  alpha=alpha, beta=beta, hinge=hinge)
    assert rel_close(loss(x, y), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_latent_boost_with_switches_off_equals_magnet(seed):
    x, y = random_batch(seed, singletons=seed % 3)
    lb = build_loss("latent_boost", pca=False, per_class_variance=False, schedule=False,
                    hinge=True, eps=0.0)
    lb.set_epoch(7, 10)  # the schedule is off: the epoch must not matter
    magnet = build_loss("magnet")
    assert torch.equal(lb(x, y), magnet(x, y))


# Two classes of two points each in 2-D: A = (-1,0),(1,0), mean (0,0); B = (-1,1),(1,1), mean (0,1).
# Every own distance is 1 and every distance to the other mean is 1 + 1 = 2.
HAND_X = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [-1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)


HAND_Y = torch.tensor([0, 0, 1, 1])


def test_magnet_hand_value():
    # pooled σ² = (1+1+1+1)/(4-1) = 4/3, 2σ² = 8/3: ℓ = 1/(8/3) + 1 - 2/(8/3) = 0.625 per sample.
    assert build_loss("magnet")(HAND_X, HAND_Y).item() == pytest.approx(0.625)


def test_latent_boost_hand_value():
    # per-class σ² = (1+1)/(2-1) = 2, 2σ² = 4; epoch 0: α = 2, β = 1;
    # ℓ = -log(exp(-1/4 - 2) / exp(-2/4) + ε) = 1.75 (ε = 1e-8 changes the 8th digit).
    loss = build_loss("latent_boost", pca=False)
    loss.set_epoch(0, 10)
    expected = -math.log(math.exp(-0.25 - 2.0) / math.exp(-0.5) + 1e-8)
    assert loss(HAND_X, HAND_Y).item() == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.75, abs=1e-6)


def test_schedule_values():
    # Eq. 9 with α0 = β0 = 1 at E = 0, 0.2·E_total and E_total (E_total = 100).
    assert alpha_beta_schedule(0, 100) == (2.0, 1.0)
    alpha, beta = alpha_beta_schedule(20, 100)
    assert alpha == pytest.approx(1 + math.exp(-20 / 105)) and beta == 0.0
    alpha, beta = alpha_beta_schedule(100, 100)
    assert alpha == pytest.approx(1 + math.exp(-100 / 105)) and beta == 0.0
    assert alpha_beta_schedule(10, 100)[1] == pytest.approx(0.5)
    assert alpha_beta_schedule(0, 100, alpha0=0.5, beta0=2.0) == (1.5, 2.0)


def test_schedule_reaches_the_loss():
    loss = build_loss("latent_boost")
    loss.set_epoch(20, 100)
    assert loss.schedule_values() == alpha_beta_schedule(20, 100)
    assert build_loss("latent_boost", schedule=False, alpha=1.5).schedule_values() == (1.5, 1.0)


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_pca_components_on_data_of_known_rank(rank):
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(64, rank, generator=g) @ torch.randn(rank, 32, generator=g) + 5.0
    _, k = pca_project(x.double(), threshold=1.0)
    assert k == rank
    _, k95 = pca_project(x.double(), threshold=0.95)
    assert 1 <= k95 <= rank
    assert k95 == naive_pca(x.double().numpy(), 0.95)[1]


def test_pca_rank_is_capped_by_batch_size():
    x = torch.randn(5, 40, dtype=torch.float64)  # centred rank is at most B - 1 = 4
    projected, k = pca_project(x, threshold=1.0)
    assert k == 4 and projected.shape == (5, 5) and torch.all(projected[:, 4] == 0)  # dropped: zeroed


@pytest.mark.parametrize("shape", [(128, 64), (128, 512), (32, 2048), (64, 64)])
def test_pca_from_the_gram_matrix_agrees_with_a_full_svd(shape):
    """B < d uses the B × B Gram matrix, B ≥ d the d × d one; both against torch.linalg.svd."""
    g = torch.Generator().manual_seed(shape[1])
    x = torch.randn(shape[0], 12, generator=g) @ torch.randn(12, shape[1], generator=g)
    x = x + 0.05 * torch.randn(*shape, generator=g)  # 12 strong directions and a little noise
    centred = x - x.mean(0)
    _, s, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    for threshold in (0.5, 0.9, 0.95, 0.99):
        projected, k = pca_project(x, threshold)
        assert int(k) == int(components_for_threshold(s, threshold, min(shape[0] - 1, shape[1])))
        expected = centred.double() @ vh[: int(k)].T
        # Same pairwise distances (the sign of each axis is arbitrary) and zeros beyond k.
        torch.testing.assert_close(torch.cdist(projected.double(), projected.double()),
                                   torch.cdist(expected, expected), rtol=1e-4, atol=1e-3)
        assert torch.all(projected[:, int(k):] == 0)


def test_components_for_threshold_hand_values():
    s = torch.tensor([3.0, 2.0, 1.0, 0.0])  # variances 9, 4, 1, 0 of total 14
    assert components_for_threshold(s, 9 / 14, 10) == 1
    assert components_for_threshold(s, 0.9, 10) == 2  # 13/14 = 0.93
    assert components_for_threshold(s, 0.95, 10) == 3
    assert components_for_threshold(s, 0.95, 2) == 2
    assert components_for_threshold(torch.zeros(3), 0.95, 3) == 1


def test_pca_detach_keeps_gradient_through_the_projection():
    x = torch.randn(16, 6, requires_grad=True)
    projected, _ = pca_project(x, 0.9, detach=True)
    projected.pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_pca_components_are_recorded_per_epoch():
    loss = build_loss("latent_boost")
    x, y = random_batch(0)
    loss(x, y)
    loss(x, y)
    stats = loss.epoch_stats()
    assert stats["pca_components"] >= 1 and "alpha" in stats and "beta" in stats
    assert "pca_components" not in loss.epoch_stats()  # reset after reading


DEGENERATE = {
    "one_class": (torch.randn(8, 5), torch.zeros(8, dtype=torch.long)),
    "all_singletons": (torch.randn(6, 5), torch.arange(6)),
    "identical_embeddings": (torch.ones(10, 5), torch.arange(10) % 3),
    "one_dimension": (torch.randn(12, 1), torch.arange(12) % 3),
    "single_sample": (torch.randn(1, 5), torch.zeros(1, dtype=torch.long)),
    "one_pair_and_singletons": (torch.randn(5, 4), torch.tensor([0, 0, 1, 2, 3])),
}


AUX_CONFIGS = [
    ("magnet", {}),
    ("latent_boost", {}),
    ("latent_boost", {"hinge": True}),
    ("latent_boost", {"pca": False, "per_class_variance": False, "schedule": False}),
    ("latent_boost", {"variance_detach": True, "eps": 0.0}),
]


@pytest.mark.parametrize("case", sorted(DEGENERATE))
@pytest.mark.parametrize("name,params", AUX_CONFIGS)
def test_finite_loss_and_gradients_on_degenerate_batches(case, name, params):
    x, y = DEGENERATE[case]
    x = x.clone().requires_grad_(True)
    loss = build_loss(name, **params)
    loss.set_epoch(0, 10)
    value = loss(x, y)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", ["magnet", "latent_boost"])
def test_batch_where_nothing_counts_gives_zero_attached_to_the_graph(name):
    x = torch.randn(4, 3, requires_grad=True)
    value = build_loss(name)(x, torch.arange(4))  # every class a singleton
    assert value.item() == 0.0 and value.requires_grad


def test_losses_accept_half_precision_features():
    x, y = random_batch(1)
    value = build_loss("latent_boost")(x.to(torch.bfloat16), y)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert build_loss("magnet")(x, y).dtype == torch.float64  # wider inputs keep their precision


def test_naive_pca_agrees_with_numpy_rank():
    x = np.random.default_rng(0).normal(size=(30, 4)) @ np.random.default_rng(1).normal(size=(4, 9))
    assert naive_pca(x, 1.0)[1] == 4


def test_pca_survives_dead_relu_units():
    """44 of 64 latent units exactly zero (a fresh CNN's ReLU latent): float32 eigh fails here."""
    g = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(128, 64, generator=g))
    x[:, 20:] = 0.0
    projected, k = pca_project(x, 0.95)
    _, s, vh = torch.linalg.svd((x - x.mean(0)).double(), full_matrices=False)
    assert int(k) == int(components_for_threshold(s, 0.95, 63)) and torch.isfinite(projected).all()
    expected = (x - x.mean(0)).double() @ vh[: int(k)].T
    torch.testing.assert_close(torch.cdist(projected.double(), projected.double()),
                               torch.cdist(expected, expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,params", [
    ("magnet", {}), ("magnet", {"variance_detach": True}),
    ("latent_boost", {}), ("latent_boost", {"pca": False, "per_class_variance": False}),
    ("latent_boost", {"hinge": False, "schedule": False}),
])
@pytest.mark.parametrize("labels", [
    [0, 0, 3, 3, 3, 7, 7, 1],  # classes 2, 4, 5, 6, 8, 9 absent; class 1 a singleton
    [2, 2, 2, 2, 2, 2, 2, 2],  # one class: nothing counts
    [0, 1, 2, 3, 4, 5, 6, 7],  # all singletons
    [5, 5, 9, 9, 9, 9, 0, 0],
])
def test_cluster_losses_are_the_same_with_a_fixed_class_count(name, params, labels):
    """With num_classes (no host sync on CUDA) the loss and its gradient equal torch.unique's."""
    g = torch.Generator().manual_seed(sum(labels))
    x = torch.randn(len(labels), 6, generator=g, dtype=torch.float64)
    y = torch.tensor(labels)
    values, grads = [], []
    for num_classes in (None, 10):
        loss = build_loss(name, num_classes=num_classes, **params).double()
        loss.set_epoch(3, 20)
        xi = x.clone().requires_grad_(True)
        value = loss(xi, y)
        value.backward()
        values.append(value.detach())
        grads.append(xi.grad)
    torch.testing.assert_close(values[0], values[1])
    torch.testing.assert_close(grads[0], grads[1])
