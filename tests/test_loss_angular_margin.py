"""ArcFace, CosFace and SphereFace (docs/losses/angular_margin.md): the library they wrap, and
SphereFace's annealing by the Caffe schedule, a naive loop and a checkpoint."""

import pytest
import torch
from pytorch_metric_learning import losses as pml
from support.loss_batches import C, D, batch, build
from support.naive_losses import naive_annealed_sphereface

from latentexp.config.components import build_loss
from latentexp.errors import ConfigError
from latentexp.losses import HeadLoss


@pytest.mark.parametrize(
    "name,library,defaults",
    [
        ("arcface", pml.ArcFaceLoss, {"margin": 28.6, "scale": 64}),
        ("cosface", pml.CosFaceLoss, {"margin": 0.35, "scale": 64}),
        ("sphereface", pml.SphereFaceLoss, {"margin": 4, "scale": 1}),
    ],
)
def test_angular_margin_losses_equal_the_library(name, library, defaults):
    x, y = batch(1)
    # SphereFace without its annealing (λ_a = 0 at every batch) is the library's loss
    ours = build(name, **({"anneal_base": 0.0, "anneal_min": 0.0} if name == "sphereface" else {}))
    theirs = library(num_classes=C, embedding_size=D, **defaults).double()
    theirs.W.data.copy_(ours.loss.W.data)
    assert torch.allclose(ours(x, y), theirs(x, y))
    assert torch.allclose(ours.logits(x), theirs.get_logits(x))
    assert isinstance(ours, HeadLoss)


def test_sphereface_annealing_follows_the_caffe_schedule():
    loss = build("sphereface")
    assert loss.annealing_weight().item() == pytest.approx(1000.0)  # before the first batch (t = 0)
    x, y = batch(2)
    weights = []
    for _ in range(3):
        loss(x, y)
        weights.append(loss.annealing_weight().item())
    assert weights == pytest.approx([1000 / 1.12, 1000 / 1.24, 1000 / 1.36])
    loss.iteration.fill_(1657)  # 1000/(1 + 0.12 t) reaches the floor of 5 after t = 1658.3
    assert loss.annealing_weight().item() == pytest.approx(1000 / (1 + 0.12 * 1657))
    loss.iteration.fill_(1659)
    assert loss.annealing_weight().item() == 5.0
    loss.eval()
    loss(x, y)  # evaluation batches do not advance the schedule
    assert loss.iteration.item() == 1659
    assert loss.epoch_stats()["sphereface_lambda"] == 5.0


@pytest.mark.parametrize("iteration", [0, 10, 5000])
@pytest.mark.parametrize("seed", range(2))
def test_annealed_sphereface_matches_naive_loop(iteration, seed):
    x, y = batch(seed)
    loss = build("sphereface")
    loss.iteration.fill_(iteration)  # the next training batch is t = iteration + 1
    blend = max(5.0, 1000.0 / (1 + 0.12 * (iteration + 1)))
    expected = naive_annealed_sphereface(x.numpy(), y.numpy(), loss.loss.W.detach().numpy(), blend=blend)
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-10)


def test_sphereface_with_a_huge_blend_is_softmax_on_normalised_class_weights():
    """λ_a → ∞ leaves cos θ at the target: cross-entropy of ‖x‖·cos θ_j (what annealing starts from)."""
    x, y = batch(3)
    loss = build("sphereface", anneal_base=1e12, anneal_min=1e12)
    logits = x @ torch.nn.functional.normalize(loss.loss.W.detach(), dim=0)
    assert loss(x, y).item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-9)
    assert torch.allclose(loss.logits(x), logits)


def test_sphereface_resumes_its_schedule_from_a_checkpoint():
    x, y = batch(4)
    loss = build("sphereface")
    for _ in range(7):
        loss(x, y)
    fresh = build("sphereface")
    fresh.load_state_dict(loss.state_dict())
    assert fresh.iteration.item() == 7 and fresh.annealing_weight().item() == loss.annealing_weight().item()
    with pytest.raises(ConfigError, match="loss.anneal_gamma=-1.0 is invalid: expected a non-negative"):
        build_loss("sphereface", num_classes=C, embedding_size=D, anneal_gamma=-1.0)
