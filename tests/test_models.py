import pytest
import torch

from latentexp.config.components import build_model
from latentexp.errors import ConfigError


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,channels,size,classes,latent,penultimate",
    [
        ("cnn", 1, 28, 10, 64, 64),
        ("vgg16", 3, 32, 10, 512, 512),
        ("resnet50", 3, 32, 100, 2048, 2048),
        # adapted to other datasets' shapes
        ("cnn", 3, 32, 100, 64, 64),
        ("vgg16", 1, 28, 10, 512, 512),
        ("resnet50", 1, 28, 10, 2048, 2048),
    ],
)
def test_latent_dimensions_and_output_shapes(name, channels, size, classes, latent, penultimate):
    model = build_model(name, channels, (size, size), classes).eval()
    out = model(torch.randn(3, channels, size, size))
    assert out.logits.shape == (3, classes)
    assert out.features["latent"].shape == (3, latent)
    assert out.features["penultimate"].shape == (3, penultimate)


def test_resnet50_has_the_cifar_stem():
    model = build_model("resnet50", 3, (32, 32), 100)
    first = model.body[0]
    assert first.kernel_size == (3, 3) and first.stride == (1, 1)
    assert isinstance(model.body[3], torch.nn.Identity)  # no max-pool


@pytest.mark.slow
def test_vgg16_has_thirteen_conv_layers_and_three_linear_layers():
    model = build_model("vgg16", 3, (32, 32), 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 13 and len(linears) == 3
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    plain = build_model("vgg16", 3, (32, 32), 10, batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())


def test_unknown_model_lists_valid_choices():
    with pytest.raises(ConfigError, match="cnn, ffnn, resnet18, resnet50, timm, torchvision, vgg16"):
        build_model("vgg19", 3, (32, 32), 10)
    with pytest.raises(ConfigError, match="Bad parameters for model 'cnn'"):
        build_model("cnn", 1, (28, 28), 10, widht=3)


@pytest.mark.parametrize("latent,pooling", [("global_max", torch.nn.AdaptiveMaxPool2d),
                                            ("global_avg", torch.nn.AdaptiveAvgPool2d)])
def test_the_paper_cnns_pooled_latent_is_its_flattened_conv_output(latent, pooling):
    """The literal reading of Appendix A.1: the 64-d latent is the flattened conv map pooled to
    1x1, and a linear layer with ReLU sits between it and the classifier."""
    model = build_model("cnn", 1, (28, 28), 10, latent=latent).eval()
    x = torch.randn(5, 1, 28, 28)
    out = model(x)
    conv_map = model.features[:8](x)  # the two conv blocks: (5, 64, 7, 7)
    expected = conv_map.amax((2, 3)) if latent == "global_max" else conv_map.mean((2, 3))
    torch.testing.assert_close(out.features["latent"], expected)
    assert isinstance(model.features[8], pooling) and model.feature_dims == {"latent": 64, "penultimate": 64}
    torch.testing.assert_close(out.features["penultimate"], torch.relu(model.embed[0](expected)))
    torch.testing.assert_close(out.logits, model.classifier(out.features["penultimate"]))
    wide = build_model("cnn", 1, (28, 28), 10, latent=latent, latent_dim=32)
    assert wide.feature_dims == {"latent": 64, "penultimate": 32}


def test_the_paper_cnns_default_latent_is_the_dense_layer():
    model = build_model("cnn", 1, (28, 28), 10).eval()
    out = model(torch.randn(2, 1, 28, 28))
    assert out.features["latent"] is out.features["penultimate"] and model.latent == "dense"


def test_an_unknown_cnn_latent_is_refused_before_any_work(compose_cfg):
    from latentexp.launch.validation import validate_config

    refusal = "model.latent='flat' is not a reading.*dense, global_max, global_avg"
    with pytest.raises(ConfigError, match=refusal):
        validate_config(compose_cfg("model.latent=flat"))


@pytest.mark.parametrize("setting,says", [("model.latent_dim=true", "model.latent_dim=True is invalid"),
                                          ("model.latent_dim=0", "model.latent_dim=0 is invalid"),
                                          ("model.dropout=1.0", "model.dropout=1.0 is invalid")])
def test_the_cnns_settings_are_checked_before_any_work(compose_cfg, setting, says):
    from latentexp.launch.validation import validate_config

    with pytest.raises(ConfigError, match=says):
        validate_config(compose_cfg(setting))
