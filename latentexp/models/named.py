"""Backbones by name: ``model=torchvision model.arch=resnet34`` (any torchvision classification
model) and ``model=timm model.arch=convnext_tiny`` (any timm model, the ``timm`` extra).

The latent is the backbone's pooled features (for torchvision, the input of the architecture's
final linear layer, which replaces that layer: the pooled features of ResNet, EfficientNet,
ConvNeXt, ViT, ...; the last hidden layer of VGG, AlexNet and MobileNetV3), optionally projected
by a linear ``latent_dim`` layer; a linear classifier follows. ``pretrained=PATH`` loads a local
state dict into the backbone (never a download at run time); ``stem=cifar`` gives the ResNet
family a 3x3 stride-1 first convolution and no max-pool for small images. A first convolution
that does not take the data's channels is rebuilt for them (pretrained RGB weights summed for
one channel, repeated and rescaled for others, as timm does).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from latentexp.errors import ConfigError
from latentexp.io import file_stamp
from latentexp.models.base import ModelOutput
from latentexp.tensor_files import UnsafeFile, first_line, load_tensors

log = logging.getLogger("latentexp")

STEMS = ("imagenet", "cifar")
NEEDS_FLAGS = {"googlenet": {"aux_logits": False, "init_weights": True},
               "inception_v3": {"aux_logits": False, "init_weights": True}}


def _set_module(net: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, leaf, module)


def _last_linear(net: nn.Module, arch: str) -> tuple[str, nn.Linear]:
    linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"model.arch={arch} has no final linear layer to take its features from; choose "
                          "another architecture.")
    return linears[-1]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = load_tensors(path)
    except UnsafeFile as err:
        raise ConfigError(f"model.pretrained={path} is refused: {err}. Save the weights alone with "
                          "torch.save(model.state_dict(), PATH).") from None
    except Exception as err:  # noqa: BLE001 - zip archives and plain garbage fail differently
        raise ConfigError(f"model.pretrained={path} is not a PyTorch state dict ({type(err).__name__}: "
                          f"{first_line(err)}); save one with torch.save(model.state_dict(), "
                          "PATH).") from None
    for wrapper in ("state_dict", "model"):  # Lightning checkpoints, training scripts' dicts
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"model.pretrained={path} holds no state dict of tensors; save one with "
                          "torch.save(model.state_dict(), PATH).")
    for prefix in ("module.", "body."):  # DataParallel's; a latentexp backbone's own
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_weights(net: nn.Module, path: str | Path, arch: str, head: str | None) -> None:
    """``path``'s weights into ``net``; every backbone tensor must be there with its shape (the
    file's classifier, under ``head``, is left out: the run has its own)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"model.pretrained={path} is not a file; give a local weights file (latentexp "
                          "never downloads weights at run time).")
    given = {k: v for k, v in _read_state_dict(path).items() if not (head and k.startswith(f"{head}."))}
    expected = net.state_dict()
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = [f"{k} {tuple(given[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in given and given[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = (("missing", missing), ("not in the model", unexpected), ("other shapes", wrong))
        details = "; ".join(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                            for label, keys in parts if keys)
        raise ConfigError(f"model.pretrained={path} does not fit model.arch={arch} ({details}); give the "
                          f"weights of that architecture.")
    net.load_state_dict(given, strict=False)


def _conv_for(old: nn.Conv2d, in_channels: int, **changes) -> nn.Conv2d:
    settings = {"kernel_size": old.kernel_size, "stride": old.stride, "padding": old.padding,
                "dilation": old.dilation, "groups": old.groups, "bias": old.bias is not None, **changes}
    return nn.Conv2d(in_channels, old.out_channels, **settings)


def adapt_input(net: nn.Module, in_channels: int, stem: str, arch: str) -> None:
    """The CIFAR stem where asked, else the first convolution rebuilt for ``in_channels``."""
    if stem == "cifar":
        conv, pool = getattr(net, "conv1", None), getattr(net, "maxpool", None)
        if not isinstance(conv, nn.Conv2d) or pool is None:
            raise ConfigError(f"model.stem=cifar replaces a ResNet's conv1 and max-pool; model.arch={arch} "
                              "has neither. Use model.stem=imagenet (and dataset.image_size to enlarge the "
                              "images).")
        net.conv1 = _conv_for(conv, in_channels, kernel_size=3, stride=1, padding=1)
        net.maxpool = nn.Identity()
        return
    name, conv = next(((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)), (None, None))
    if conv is None or conv.in_channels == in_channels:
        return
    new = _conv_for(conv, in_channels)
    with torch.no_grad():  # keep what the weights learnt: summed for grey, repeated and rescaled otherwise
        weight = conv.weight
        if in_channels == 1:
            new.weight.copy_(weight.sum(dim=1, keepdim=True))
        else:
            repeats = math.ceil(in_channels / weight.shape[1])
            scale = weight.shape[1] / in_channels
            new.weight.copy_(weight.repeat(1, repeats, 1, 1)[:, :in_channels] * scale)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_module(net, name, new)


def _check_stem(stem: str) -> None:
    if stem not in STEMS:
        raise ConfigError(f"model.stem={stem} is invalid: expected one of {', '.join(STEMS)}.")


def _torchvision_arches() -> list[str]:
    import torchvision.models

    return torchvision.models.list_models(module=torchvision.models)


def _torchvision_body(arch: str, pretrained: str | None) -> tuple[nn.Module, int]:
    import torchvision.models

    if arch not in _torchvision_arches():
        raise ConfigError(f"model.arch={arch} is not a torchvision classification model; torchvision has "
                          f"{', '.join(_torchvision_arches())}.")
    net = torchvision.models.get_model(arch, weights=None, **NEEDS_FLAGS.get(arch, {}))
    head, linear = _last_linear(net, arch)
    _set_module(net, head, nn.Identity())
    if pretrained:
        load_weights(net, pretrained, arch, head)
    return net, linear.in_features




def _timm():
    try:
        import timm
    except ImportError:
        raise ConfigError("model=timm needs the timm package: pip install 'latentexp[timm]'.") from None
    return timm


def _timm_body(arch: str, pretrained: str | None) -> tuple[nn.Module, int]:
    timm = _timm()
    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch.split('.')[0][:6]}*")[:12]
        raise ConfigError(f"model.arch={arch} is not a timm "
                          f"model{'; similar: ' + ', '.join(close) if close else ''} (timm.list_models() "
                          "lists them all).")
    net = timm.create_model(arch, pretrained=False, num_classes=0)  # num_classes=0: the pooled features
    if pretrained:
        classifier = net.pretrained_cfg.get("classifier")
        load_weights(net, pretrained, arch, classifier if isinstance(classifier, str) else None)
    return net, net.num_features


def _stamp(path: str | None) -> tuple | None:
    """The weights file's stamp (a rewritten file is checked again); where the file system gives
    none, a key of its own each time, so that nothing is taken from the cache."""
    if not path or not Path(path).expanduser().is_file():
        return None
    stamp = file_stamp(Path(path).expanduser())
    return tuple(stamp) if stamp is not None else (object(),)


@functools.lru_cache(maxsize=32)
def _checked(body_of: Callable, arch: str, pretrained: str | None, stamp: tuple | None, stem: str) -> None:
    body, _ = body_of(arch, pretrained)
    adapt_input(body, 3, stem, arch)


def _warn_collapsed(arch: str, image_size: tuple[int, int], last: tuple[int, int], stem: str) -> None:
    """Say, before any training, that the backbone's last feature map is under 2x2 at this image
    size: its features keep no spatial layout, and such runs often fit the training images and
    generalise badly, without any other sign."""
    advice = ("model.stem=cifar (a 3x3 stride-1 first convolution and no max-pool, for the ResNet "
              "family) or larger images, dataset.image_size=64 or more" if stem == "imagenet"
              else "larger images, dataset.image_size=64 or more")
    log.warning("model.arch=%s reduces a %dx%d image to a %dx%d feature map before its pooling: what the "
                "latent sees keeps no spatial layout. Consider %s.", arch, image_size[0], image_size[1],
                last[0], last[1], advice)


class NamedBackbone(nn.Module):
    """A body by name that maps images to pooled features (``body_of``), an optional linear
    projection (the latent) and a linear classifier."""

    body_of: Callable[[str, str | None], tuple[nn.Module, int]]

    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int,
                 arch: str = "resnet18", latent_dim: int | None = None, pretrained: str | None = None,
                 stem: str = "imagenet"):
        super().__init__()
        _check_stem(stem)
        if latent_dim is not None and (not isinstance(latent_dim, int) or latent_dim < 1):
            raise ConfigError(f"model.latent_dim={latent_dim} is invalid: expected null or a positive "
                              "integer.")
        self.body, features = self.body_of(arch, pretrained)
        adapt_input(self.body, in_channels, stem, arch)
        self.project = nn.Linear(features, latent_dim) if latent_dim else nn.Identity()
        dim = latent_dim or features
        self.classifier = nn.Linear(dim, num_classes)
        self.feature_dims = {"latent": dim, "penultimate": dim}
        self.body.eval()
        maps: list[tuple[int, int]] = []  # each convolution's output size, in the order they run
        hooks = [m.register_forward_hook(lambda _m, _i, out: maps.append(tuple(out.shape[-2:])))
                 for m in self.body.modules() if isinstance(m, nn.Conv2d)]
        try:  # a clear refusal now, not a shape error in the first batch
            with torch.no_grad():
                self.body(torch.zeros(2, in_channels, *image_size))
        except (RuntimeError, ValueError, AssertionError) as err:
            raise ConfigError(f"model.arch={arch} cannot take {in_channels}x{image_size[0]}x{image_size[1]} "
                              f"images ({str(err).splitlines()[0]}); resize them (dataset.image_size) or "
                              "choose another architecture.") from None
        finally:
            for hook in hooks:
                hook.remove()
        self.body.train()
        if maps and min(maps[-1]) < 2:
            _warn_collapsed(arch, image_size, maps[-1], stem)

    @classmethod
    def check_settings(cls, arch: str = "resnet18", latent_dim: int | None = None,
                       pretrained: str | None = None, stem: str = "imagenet") -> None:
        """Before any work (validation): the architecture exists, the stem applies, the weights fit."""
        _check_stem(stem)
        _checked(cls.body_of, arch, pretrained, _stamp(pretrained), stem)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        latent = self.project(self.body(x))
        return ModelOutput(self.classifier(latent), {"latent": latent, "penultimate": latent})


class TorchvisionBackbone(NamedBackbone):
    body_of = staticmethod(_torchvision_body)


class TimmBackbone(NamedBackbone):
    body_of = staticmethod(_timm_body)
