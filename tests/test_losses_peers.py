"""The other papers' losses: naive loops, hand values, the library they wrap, state and gradients."""

import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning.reducers import MeanReducer
from support.naive_losses import (
    naive_amc,
    naive_annealed_sphereface,
    naive_center,
    naive_center_update,
    naive_corel_cosine,
    naive_corel_gaussian,
    naive_lace_logits,
    naive_lmdl,
)

from latentexp.config_tree import group_option
from latentexp.errors import ConfigError
from latentexp.losses import HeadLoss, build_loss, loss_class, loss_kind, loss_names, loss_parameters

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


# ---------------------------------------------------------------- pytorch-metric-learning wrappers


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


# ---------------------------------------------------------------- center loss


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


# ---------------------------------------------------------------- COREL


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


# ---------------------------------------------------------------- LACE


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


# ---------------------------------------------------------------- LMDL


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


# ---------------------------------------------------------------- annealed SphereFace


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


# ---------------------------------------------------------------- AMC


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


# ---------------------------------------------------------------- every loss: gradients, state

DEGENERATE = {
    "one_class": (torch.randn(8, D), torch.zeros(8, dtype=torch.long)),
    "all_singletons": (torch.randn(5, D), torch.arange(5)),
    "identical_embeddings": (torch.ones(10, D), torch.arange(10) % 3),
    "single_sample": (torch.randn(1, D), torch.zeros(1, dtype=torch.long)),
}


def call(loss, x, y):
    return loss(x if loss.feature != "logits" else x[:, :C], y)


def built(name, dtype=torch.float32, seed=0):
    """Loss ``name`` with the same initial weights for a given seed, in ``dtype``."""
    torch.manual_seed(seed)
    classifier = linear(torch.randn(C, D), torch.randn(C)).to(dtype)
    return build_loss(name, num_classes=C, embedding_size=D, classifier=classifier).to(dtype)


@pytest.mark.parametrize("case", sorted(DEGENERATE))
@pytest.mark.parametrize("name", loss_names())
def test_every_loss_is_finite_with_finite_gradients_on_degenerate_batches(name, case):
    x, y = DEGENERATE[case]
    x = x.clone().requires_grad_(True)
    loss = built(name)
    value = call(loss, x, y)
    assert value.dim() == 0 and torch.isfinite(value), value
    value.backward()
    assert torch.isfinite(x.grad).all()
    for p in loss.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_state_survives_a_state_dict_round_trip(name):
    x, y = batch(10, dtype=torch.float32)
    loss = built(name)
    call(loss, x, y)  # updates centres / momentum centroids where there are any
    fresh = built(name, seed=1)
    fresh.load_state_dict(loss.state_dict())
    for (k, a), b in zip(loss.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    loss.eval()
    fresh.eval()
    if isinstance(loss, HeadLoss):
        assert torch.equal(loss.logits(x), fresh.logits(x))


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_agrees_in_float64_float32_and_from_bf16_autocast_features(name):
    """The trainer runs the model under bf16 autocast (CUDA) and the loss outside it, on features
    that are bf16: the loss must compute in float32 from them and stay close to its float64 value.
    Here the features come from a linear layer run under CPU autocast."""
    x, y = batch(11, n=40)
    layer = torch.nn.Linear(D, D, dtype=torch.float64)
    values, grads = {}, {}
    for dtype, autocast in ((torch.float64, False), (torch.float32, False), (torch.float32, True)):
        source = layer.to(dtype).requires_grad_(True)
        source.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            features = source(x.to(dtype))
        assert features.dtype == (torch.bfloat16 if autocast else dtype)
        value = call(built(name, dtype), features, y)
        assert value.dtype == dtype  # bf16 features are computed on in float32
        value.backward()
        key = "bf16" if autocast else str(dtype)
        values[key], grads[key] = value.detach().double(), source.weight.grad.clone().double()
    assert torch.isfinite(values["bf16"]) and torch.isfinite(grads["bf16"]).all()
    torch.testing.assert_close(values["torch.float32"], values["torch.float64"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads["torch.float32"], grads["torch.float64"], rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(values["bf16"], values["torch.float64"], rtol=5e-2, atol=5e-2)


def test_each_loss_is_one_of_the_two_kinds():
    kinds = {name: loss_kind(loss_class(name)) for name in loss_names()}
    heads = {"corel_gaussian", "corel_cosine", "lace", "arcface", "cosface", "sphereface"}
    auxiliary = {"ce", "magnet", "latent_boost", "contrastive", "triplet", "npair", "center", "lmdl", "amc"}
    assert {n for n, k in kinds.items() if k == "head"} == heads
    assert {n for n, k in kinds.items() if k == "auxiliary"} == auxiliary


def test_every_loss_config_lists_exactly_its_parameters():
    for name in loss_names():
        keys = set(group_option("loss", name)) - {"name", "_target_"}
        assert keys == set(loss_parameters(loss_class(name))), name


def test_cosine_repulsion_takes_the_largest_squared_cosine():
    # h = (1, 0); class vectors: own (1, 0), others (0.6, 0.8) cos 0.6 and (-0.9, 0.1) cos ≈ -0.99.
    loss = build_loss("corel_cosine", num_classes=3, embedding_size=2, lam=0.5)
    with torch.no_grad():
        loss.weight.copy_(torch.tensor([[1.0, 0.0], [0.6, 0.8], [-0.9, 0.1]]))
    cos_far = -0.9 / math.hypot(0.9, 0.1)
    value = loss(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert value.item() == pytest.approx(-0.5 * 1.0 + 0.5 * cos_far**2)
