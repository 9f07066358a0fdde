"""Contrastive, triplet and N-pair (docs/losses/pair_based.md): the pytorch-metric-learning losses
they wrap, with Table 4's settings."""

import pytest
import torch
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning.reducers import MeanReducer
from support.loss_batches import batch, build


@pytest.mark.parametrize(
    "name,library",
    [
        ("contrastive", lambda: pml.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0)),
        ("triplet", lambda: pml.TripletMarginLoss(margin=0.05, triplets_per_anchor="all")),
        ("npair", lambda: pml.NPairsLoss(reducer=MeanReducer())),
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_pair_losses_equal_the_library_with_table_4_settings(name, library, seed):
    x, y = batch(seed)
    assert torch.allclose(build(name)(x, y), library()(x, y))
