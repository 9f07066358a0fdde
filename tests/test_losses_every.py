"""What every loss of conf/loss/ shares, found by listing the losses (a new loss is covered without
editing this file): finite values and gradients on degenerate batches, a state-dict round trip,
float64/float32/bf16 agreement, its kind, its YAML listing exactly its parameters, the registry."""

import pytest
import torch
import torch.nn.functional as F
from support.loss_batches import C, D, batch, linear

from latentexp.config.components import build_loss, loss_class, loss_names
from latentexp.config.tree import LABEL_KEYS, group_option
from latentexp.errors import ConfigError
from latentexp.losses import HeadLoss, loss_kind, loss_parameters


def test_cross_entropy_is_torch_cross_entropy():
    logits, y = torch.randn(20, 7), torch.randint(0, 7, (20,))
    assert torch.allclose(build_loss("ce")(logits, y), F.cross_entropy(logits, y))


def test_registry_builds_every_loss_and_rejects_bad_names():
    assert {"ce", "magnet", "latent_boost", "lmdl", "arcface"} <= set(loss_names())
    with pytest.raises(ConfigError, match="Valid choices: amc, arcface, ce, center, .*magnet"):
        build_loss("magnett")
    with pytest.raises(ConfigError, match="no parameter beta.*alpha"):
        build_loss("magnet", beta=1.0)


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
        keys = set(group_option("loss", name)) - {"_target_", *LABEL_KEYS}
        assert keys == set(loss_parameters(loss_class(name))), name
