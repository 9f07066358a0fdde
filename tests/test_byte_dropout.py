"""The byte-mask dropout (models/dropout.py) and the paper CNN's pool-before-ReLU blocks: the
same computation as nn.Dropout and conv, ReLU, pool, only cheaper."""

import math

import pytest
import torch
from torch import nn

from latentexp.config.components import build_model
from latentexp.models.dropout import ByteDropout, keep_mask


@pytest.mark.parametrize("p", [0.25, 0.5, 0.1])  # bytes for 0.25 and 0.5, uniform floats for 0.1
def test_the_keep_mask_is_bernoulli_of_one_minus_p(p):
    torch.manual_seed(0)
    mask = keep_mask(torch.empty(400_000), p)
    kept = mask.float().mean().item()
    sd = math.sqrt(p * (1 - p) / mask.numel())
    assert abs(kept - (1 - p)) < 5 * sd
    # independent neighbours: the fraction of kept pairs is (1 - p)^2, as it would not be if
    # bytes of one word were correlated
    pairs = (mask[:-1] & mask[1:]).float().mean().item()
    assert abs(pairs - (1 - p) ** 2) < 5 * math.sqrt((1 - p) ** 2 / mask.numel())


def test_every_byte_value_is_drawn_equally_often():
    """The 64-bit words cover their full range: no byte position is biased (a top bit always 0
    would drop an eighth of the bytes' upper half)."""
    torch.manual_seed(1)
    words = torch.empty(200_000, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    for position in range(8):
        top_half = (words.view(torch.uint8).view(-1, 8)[:, position] >= 128).float().mean().item()
        assert abs(top_half - 0.5) < 0.01, position


def test_the_mask_follows_the_layout_of_its_input():
    x = torch.randn(4, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    mask = keep_mask(x, 0.25)
    assert mask.shape == x.shape and mask.stride() == x.stride()
    torch.manual_seed(0)  # the same bytes, in memory order, as for a plain NHWC tensor
    nhwc = keep_mask(x.permute(0, 2, 3, 1).contiguous(), 0.25)
    assert torch.equal(mask.permute(0, 2, 3, 1), nhwc)
    strided = torch.randn(4, 8, 10)[:, :, ::2]  # neither layout: made contiguous first
    assert keep_mask(strided, 0.25).shape == strided.shape


@pytest.mark.parametrize("p", [0.25, 0.3])
def test_byte_dropout_scales_kept_values_and_their_gradients(p):
    x = torch.randn(64, 16, 6, 6, requires_grad=True)
    layer = ByteDropout(p)
    torch.manual_seed(3)
    y = layer(x)
    kept = y != 0
    assert torch.equal(y[kept], (x * (1.0 / (1.0 - p)))[kept])
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, kept.float() / (1.0 - p))
    torch.manual_seed(3)
    assert torch.equal(layer(x), y)  # seeded: the same mask again


def test_byte_dropout_is_nn_dropout_at_evaluation_and_at_the_ends():
    x = torch.randn(8, 4)
    layer = ByteDropout(0.25)
    assert isinstance(layer, nn.Dropout) and layer.state_dict() == {}
    assert layer.eval()(x) is x
    layer.train()
    assert ByteDropout(0.0)(x) is x
    assert torch.equal(ByteDropout(1.0)(x), torch.zeros_like(x))


def test_a_masked_inplace_dropout_writes_its_input():
    x = torch.randn(32, 32)
    y = ByteDropout(0.5, inplace=True)(x)
    assert y.data_ptr() == x.data_ptr() and bool((x == 0).any())


class ReluBeforePool(nn.Module):
    """The paper CNN in the order Appendix A.1 lists it (conv, ReLU, pool), no dropout: the reference."""

    def __init__(self, cnn):
        super().__init__()
        conv1, conv2 = cnn.features[0], cnn.features[4]
        self.features = nn.Sequential(conv1, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Flatten())
        self.embed, self.classifier = cnn.embed, cnn.classifier

    def forward(self, x):
        return self.classifier(self.embed(self.features(x)))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_pooling_before_relu_is_the_same_network(layout):
    """Forward and every gradient equal bit for bit; the batch holds exact ties (a constant
    background), where max-pooling's choice of element matters."""
    torch.manual_seed(0)
    cnn = build_model("cnn", 1, (28, 28), 10, dropout=0.0).to(memory_format=layout)
    reference = ReluBeforePool(cnn)
    x = torch.randn(16, 1, 28, 28)
    x[:, :, :10] = -0.8  # a flat region, as Fashion-MNIST's background is after normalisation
    x = x.contiguous(memory_format=layout)
    grads = []
    for model in (cnn, reference):
        model.zero_grad()
        logits = model(x).logits if model is cnn else model(x)
        logits.square().sum().backward()
        grads.append((logits.detach(), [p.grad.clone() for p in cnn.parameters()]))
    assert torch.equal(grads[0][0], grads[1][0])
    for ours, theirs in zip(grads[0][1], grads[1][1], strict=True):
        assert torch.equal(ours, theirs)


def test_the_paper_cnn_keeps_its_parameter_names():
    """Committed checkpoints and state dicts load: the conv layers keep their places."""
    keys = list(build_model("cnn", 1, (28, 28), 10).state_dict())
    assert keys[:4] == ["features.0.weight", "features.0.bias", "features.4.weight", "features.4.bias"]
