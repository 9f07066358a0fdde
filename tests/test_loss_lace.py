"""LACE (docs/losses/lace.md): the paper's eigen-whitening, and its plain-cosine special case."""

import numpy as np
import pytest
import torch
from support.loss_batches import D, batch, build
from support.naive_losses import naive_lace_logits


def test_lace_matches_the_papers_eigen_whitening():
    x, y = batch(6)
    loss = build("lace")
    with torch.no_grad():
        loss.background_factor.copy_(torch.randn(D, D, dtype=torch.float64))
        loss.background_mean.copy_(torch.randn(D, dtype=torch.float64))
    p = {k: v.detach().numpy() for k, v in loss.named_parameters()}
    expected = naive_lace_logits(x.numpy(), p["signatures"], p["background_mean"],
                                 p["background_factor"], loss.eigenvalue_floor)
    assert np.allclose(loss.logits(x).detach().numpy(), expected, atol=1e-8)
    log_probs = expected - np.log(np.exp(expected).sum(1, keepdims=True))
    assert loss(x, y).item() == pytest.approx(-log_probs[np.arange(len(y)), y.numpy()].mean(), rel=1e-8)


def test_lace_with_identity_covariance_and_zero_mean_scores_plain_cosines():
    x, _ = batch(7)
    loss = build("lace")
    with torch.no_grad():
        loss.background_factor.copy_(torch.eye(D, dtype=torch.float64))
        loss.background_mean.zero_()
    normalize = torch.nn.functional.normalize
    cosines = normalize(x, dim=1) @ normalize(loss.signatures, dim=1).T
    assert torch.allclose(loss.logits(x), cosines)
    assert loss.logits(x).abs().max() <= 1.0 + 1e-12  # no scale: scores stay in [-1, 1]
