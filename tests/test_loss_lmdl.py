"""The large-margin discriminative loss (docs/losses/lmdl.md): a naive loop over two batches, its
momentum centroids and boundary distances by hand, what it reads from the model."""

import numpy as np
import pytest
import torch
from support.loss_batches import C, D, batch, build, linear
from support.naive_losses import naive_lmdl

from latentexp.config.components import build_loss
from latentexp.errors import ConfigError
from latentexp.losses import loss_kind


def lmdl_inputs(seed=8):
    x, y = batch(seed)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(C, D, generator=g, dtype=torch.float64)
    return x, y, w, torch.randn(C, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("momentum", ["none", "partial", "both"])
def test_lmdl_matches_naive_loop_over_two_batches(momentum):
    x, y, w, b = lmdl_inputs()
    loss = build("lmdl", classifier=linear(w, b), momentum=momentum)
    first = loss(x, y)
    assert first.item() == pytest.approx(naive_lmdl(x.numpy(), y.numpy(), w.numpy(), b.numpy()), rel=1e-9)
    previous, seen = loss.centroids.numpy().copy(), loss.seen.numpy().copy()
    x2, y2 = batch(9, n=12, classes=3)  # classes 3 and 4 absent: their centroids must stay untouched
    second = loss(x2, y2)
    expected = naive_lmdl(x2.numpy(), y2.numpy(), w.numpy(), b.numpy(), momentum=momentum,
                          previous=previous, seen=seen)
    assert second.item() == pytest.approx(expected, rel=1e-9)
    if momentum != "none":
        assert np.array_equal(loss.centroids.numpy()[3:], previous[3:])


def test_lmdl_momentum_centroid_update_by_hand():
    classifier = linear(torch.eye(2), torch.zeros(2))
    loss = build_loss("lmdl", num_classes=2, embedding_size=2, classifier=classifier, momentum="partial")
    loss(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([0, 0]))
    assert loss.centroids[0].tolist() == [2.0, 0.0] and loss.seen.tolist() == [True, False]  # first sight
    loss(torch.tensor([[102.0, 0.0], [102.0, 0.0]]), torch.tensor([0, 0]))
    assert loss.centroids[0].tolist() == pytest.approx([0.99 * 2.0 + 0.01 * 102.0, 0.0])  # 3.0


def test_lmdl_signed_boundary_distance_on_a_hand_made_2d_case():
    # W = [[1, 0], [-1, 0]], b = 0: the boundary between the classes is the line x = 0 and
    # ‖w_0 − w_1‖ = 2. Class 0's centroid (2, 0) scores z = (2, -2): signed distance (z_1 − z_0)/2 = -2,
    # so the margin term is max(0, 6 - 2) = 4. Class 1's centroid (-1, 0) is right of x = 0 by 1:
    # z = (-1, 1), (z_0 − z_1)/2 = -1, term max(0, 6 - 1) = 5. Only the margin term is switched on.
    classifier = linear(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.zeros(2))
    loss = build_loss("lmdl", num_classes=2, embedding_size=2, classifier=classifier, alpha=0.0,
                      gamma_reg=0.0, momentum="none")
    h = torch.tensor([[2.0, 0.0], [2.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    value = loss(h, torch.tensor([0, 0, 1, 1]))
    assert value.item() == pytest.approx((4.0 + 5.0) / 2)
    # A centroid on the wrong side: (−2, 0) labelled 0 scores z = (−2, 2): (2 − (−2))/2 = +2, term 8.
    wrong = loss(torch.tensor([[-2.0, 0.0], [-2.0, 0.0]]), torch.tensor([0, 0]))
    assert wrong.item() == pytest.approx(8.0)


def test_lmdl_reads_penultimate_and_borrows_the_classifier():
    classifier = linear(torch.randn(C, D, dtype=torch.float64), torch.zeros(C, dtype=torch.float64))
    loss = build("lmdl", classifier=classifier)
    assert loss.feature == "penultimate" and loss_kind(type(loss)) == "auxiliary"
    assert loss.classifier is classifier  # read, not owned: the model optimises and saves W and b
    assert list(loss.parameters()) == [] and set(loss.state_dict()) == {"centroids", "seen"}
    x, y = batch(8)
    loss(x, y).backward()
    assert classifier.weight.grad is not None and classifier.bias.grad is not None


def test_lmdl_rejects_an_unknown_momentum_mode():
    with pytest.raises(ConfigError, match="partial, none, both"):
        build("lmdl", momentum="sometimes")
