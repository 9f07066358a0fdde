"""Backbones by name (model=torchvision, model=timm): the latent and its projection, local weights
files, the CIFAR stem, other channel counts, every loss on them, and bad input refused."""

import json

import pytest
import torch
from support.datasets import write_image_folder
from support.helpers import cli, make_trainer, synthetic_data

from latentexp.config.components import build_model
from latentexp.errors import ConfigError
from latentexp.models.named import TimmBackbone, TorchvisionBackbone

timm = pytest.importorskip("timm")
TINY = ("loss=ce", "lambda=0", "trainer.max_epochs=2", "trainer.batch_size=16", "trainer.progress=false",
        "device=cpu", "dataset=image_folder", "dataset.image_size=8")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("named") / "shapes", classes=3, per_class=10)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["torchvision", "timm"])
def test_resnet18_by_name_trains_on_an_image_folder(here, images, model):
    code = cli("train", f"model={model}", "model.arch=resnet18", "model.stem=cifar", "model.latent_dim=32",
               f"dataset.root={images}", *TINY, f"output_root={here / 'out'}")
    [path] = list((here / "out").glob("runs/*/result.json"))
    result = json.loads(path.read_text())
    assert code == 0 and result["status"] == "finished"
    assert result["spec"]["model"] == {"torchvision": "tv_resnet18", "timm": "timm_resnet18"}[model]
    assert result["data"]["class_names"] == ["class_a0", "class_b1", "class_c2"]


@pytest.mark.parametrize("cls", [TorchvisionBackbone, TimmBackbone])
def test_the_latent_is_the_pooled_features_or_their_projection(cls):
    plain = cls(3, (32, 32), 5, arch="resnet18")
    projected = cls(1, (28, 28), 5, arch="resnet18", latent_dim=30)
    assert plain.feature_dims == {"latent": 512, "penultimate": 512}
    out = projected(torch.rand(4, 1, 28, 28))
    assert out.logits.shape == (4, 5) and out.features["latent"].shape == (4, 30)
    assert projected.classifier.in_features == 30 and projected.feature_dims["latent"] == 30


@pytest.mark.slow
@pytest.mark.parametrize("cls, make", [
    (TorchvisionBackbone, lambda: __import__("torchvision").models.resnet18(num_classes=7)),
    (TimmBackbone, lambda: timm.create_model("resnet18", num_classes=7)),
])
def test_a_state_dict_file_loads_through_pretrained(tmp_path, cls, make):
    torch.manual_seed(3)
    source = make()
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    model = cls(3, (32, 32), 10, arch="resnet18", pretrained=str(tmp_path / "weights.pt"))
    assert torch.equal(model.body.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    grey = cls(1, (32, 32), 10, arch="resnet18", pretrained=str(tmp_path / "weights.pt"))
    assert torch.allclose(grey.body.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True))


def test_weights_of_another_arch_are_refused_with_what_differs(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "r34.pt")
    with pytest.raises(ConfigError, match="does not fit model.arch=resnet18.*not in the model: layer1.2"):
        TorchvisionBackbone.check_settings(arch="resnet18", pretrained=str(tmp_path / "r34.pt"))


def test_the_cifar_stem_keeps_small_images_large(images):
    model = TorchvisionBackbone(3, (16, 16), 3, arch="resnet18", stem="cifar")
    assert model.body.conv1.kernel_size == (3, 3) and model.body.conv1.stride == (1, 1)
    assert isinstance(model.body.maxpool, torch.nn.Identity)
    with pytest.raises(ConfigError, match="stem=cifar replaces a ResNet's conv1"):
        TorchvisionBackbone(3, (16, 16), 3, arch="mobilenet_v3_small", stem="cifar")


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["latent_boost", "arcface", "center", "lmdl"])
def test_every_loss_trains_on_a_named_backbone(loss):
    data = synthetic_data(n=64, classes=4, size=16, channels=3)
    trainer = make_trainer(data, "model.arch=resnet18", "model.latent_dim=16", loss=loss, lam=0.5,
                           model="torchvision", max_epochs=1, batch_size=16)
    trainer.fit()
    assert trainer.epoch == 1 and torch.isfinite(torch.tensor(trainer.history[-1]["train_loss"]))


@pytest.mark.slow
@pytest.mark.parametrize("setting, message", [
    ("model.arch=resnet_nineteen", "is not a torchvision classification model"),
    ("model.stem=tiny", "model.stem=tiny is invalid"),
    ("model.pretrained=/no/such/weights.pt", "is not a file"),
    ("model.pretrained=r34.pt", "does not fit model.arch=resnet18"),
])
def test_bad_model_settings_are_one_paragraph_and_exit_2(here, images, capsys, setting, message):
    if "r34" in setting:
        import torchvision

        torch.save(torchvision.models.resnet34().state_dict(), here / "r34.pt")
    code = cli("train", "model=torchvision", setting, f"dataset.root={images}", *TINY,
               f"output_root={here / 'out'}")
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (here / "out" / "runs").exists()


def test_a_feature_map_that_collapses_to_1x1_is_named_before_training(caplog):
    caplog.set_level("WARNING", logger="latentexp")
    build_model("torchvision", 3, (32, 32), 10, arch="resnet18")
    assert "reduces a 32x32 image to a 1x1 feature map" in caplog.text and "model.stem=cifar" in caplog.text
    caplog.clear()
    build_model("torchvision", 3, (32, 32), 10, arch="resnet18", stem="cifar")  # 4x4: nothing to say
    build_model("torchvision", 3, (224, 224), 10, arch="resnet18")  # 7x7
    assert "feature map" not in caplog.text


def test_a_weights_file_with_code_in_it_is_refused_without_inviting_anyone_to_load_it(tmp_path, recwarn):
    import os

    class Planted:
        def __reduce__(self):
            return (os.system, ("true",))

    path = tmp_path / "weights.pt"
    torch.save({"conv1.weight": torch.zeros(1), "x": Planted()}, path)
    with pytest.raises(ConfigError) as refused:
        build_model("torchvision", 3, (32, 32), 10, arch="resnet18", pretrained=str(path))
    message = str(refused.value)
    assert "posix.system" in message and "refused unread" in message
    assert "torch.save(model.state_dict()" in message
    assert "weights_only" not in message and "\x1b" not in message and "\n" not in message
    assert not [w for w in recwarn if "torch" in str(w.filename)]  # no torch warning on the way
