"""Center loss (docs/losses/center.md): the loss and its centre update, by naive loops and by hand."""

import numpy as np
import pytest
import torch
from support.loss_batches import C, D, batch, build
from support.naive_losses import (
    naive_center,
    naive_center_update,
)

from latentexp.config.components import build_loss


def test_center_loss_and_update_rule_match_naive_loops():
    x, y = batch(2)
    loss = build("center", center_rate=0.25)
    loss.centers.copy_(torch.randn(C, D, dtype=torch.float64))
    loss.seen.fill_(True)  # every class already has a centre
    before = loss.centers.numpy().copy()
    value = loss(x, y)
    assert value.item() == pytest.approx(naive_center(x.numpy(), y.numpy(), before), rel=1e-10)
    assert np.allclose(loss.centers.numpy(), naive_center_update(x.numpy(), y.numpy(), before, 0.25))


def test_center_update_moves_centres_toward_the_features_by_hand():
    loss = build_loss("center", num_classes=2, embedding_size=1, center_rate=0.25)
    # First sight of class 0: its centre starts at the batch mean 3; the loss is ½·(1 + 1)/2 = 0.5,
    # and the update adds 0.25·((2 − 3) + (4 − 3))/3 = 0. Class 1 is absent and stays unset.
    assert loss(torch.tensor([[2.0], [4.0]]), torch.tensor([0, 0])).item() == pytest.approx(0.5)
    assert loss.centers[:, 0].tolist() == [3.0, 0.0] and loss.seen.tolist() == [True, False]
    # Next batch: loss ½·(5 − 3)² = 2, then c_0 = 3 + 0.25·(5 − 3)/(1 + 1) = 3.25.
    assert loss(torch.tensor([[5.0]]), torch.tensor([0])).item() == pytest.approx(2.0)
    assert loss.centers[0, 0].item() == pytest.approx(3.25)
    loss.eval()
    loss(torch.tensor([[10.0]]), torch.tensor([1]))  # no update outside training
    assert loss.centers[1, 0].item() == 0.0 and not loss.seen[1]
