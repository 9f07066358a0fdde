"""Losses, backbones and datasets by the names of their option files in conf/ (``loss/``,
``model/``, ``dataset/``), each built from its ``_target_`` node: where a config or a name meets
the classes of the core, which take plain values and know nothing of conf/.
``build_loss("latent_boost", T=0.9)(features, labels)``; there is no registry to edit (a loss, a
backbone or a dataset is its option file; docs/losses/README.md, docs/models.md, docs/datasets.md).
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from latentexp.config.tree import config_groups, group_option, instantiate, target_class
from latentexp.data.datasets import SPLIT_KEYS, DataSource
from latentexp.data.raw import RawDataset
from latentexp.errors import ConfigError
from latentexp.losses import CONTEXT_PARAMETERS, Loss, ParameterError, constructor_parameters, loss_parameters

# ---------------------------------------------------------------------------- losses


def loss_names() -> list[str]:
    return config_groups()["loss"]


def loss_class(name: str) -> type[Loss]:
    """The class of loss ``name`` (the ``_target_`` of conf/loss/<name>.yaml)."""
    if name not in loss_names():
        raise ConfigError(f"Unknown loss {name!r}. Valid choices: {', '.join(loss_names())}.")
    return target_class(group_option("loss", name))


def check_parameters(name: str, cls: type, params: dict[str, Any]) -> None:
    unknown = sorted(set(params) - set(loss_parameters(cls)))
    if unknown:
        raise ConfigError(f"Loss {name!r} has no parameter {', '.join(unknown)}. Its parameters: "
                          f"{', '.join(loss_parameters(cls)) or 'none'}.")


def build_loss_from_config(node: Any, **context: Any) -> Loss:
    """The loss a config node names, given the context values its constructor asks for
    (``num_classes``, ``embedding_size``, ``classifier``). The class's own refusal becomes a
    ConfigError: a ``require`` as it is worded (it names the config key), others prefixed."""
    cls = target_class(node)
    wanted = constructor_parameters(cls)
    missing = [k for k in CONTEXT_PARAMETERS if k in wanted and wanted[k].default is inspect.Parameter.empty
               and context.get(k) is None]
    if missing:
        raise ConfigError(f"Loss {node.get('name', cls.__name__)!r} needs {', '.join(missing)} "
                          f"(the trainer supplies it).")
    given = {k: v for k, v in context.items() if k in wanted and v is not None}
    try:
        return instantiate(node, **given)
    except ParameterError as e:
        raise ConfigError(str(e)) from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"Bad parameters for loss {node.get('name', cls.__name__)!r}: {e}.") from None


def build_loss(name: str, num_classes: int | None = None, embedding_size: int | None = None,
               classifier=None, **params: Any) -> Loss:
    """Loss ``name`` with ``params`` (the class defaults for the others)."""
    cls = loss_class(name)
    check_parameters(name, cls, params)
    node = {"_target_": group_option("loss", name)["_target_"], "name": name, **params}
    return build_loss_from_config(node, num_classes=num_classes, embedding_size=embedding_size,
                                  classifier=classifier)


# ---------------------------------------------------------------------------- backbones


def build_model_from_config(node: Any, in_channels: int, image_size: tuple[int, int],
                            num_classes: int) -> nn.Module:
    """The backbone a config node names, adapted to the dataset's channels, image size and classes."""
    try:
        return instantiate(node, in_channels, tuple(image_size), num_classes)
    except TypeError as e:
        raise ConfigError(f"Bad parameters for model {node.get('name')!r}: {e}.") from None


def build_model(name: str, in_channels: int, image_size: tuple[int, int], num_classes: int,
                **params: Any) -> nn.Module:
    """Backbone ``name`` (conf/model/<name>.yaml's class) with ``params`` (class defaults for the rest)."""
    if name not in config_groups()["model"]:
        raise ConfigError(f"Unknown model {name!r}. Valid choices: {', '.join(config_groups()['model'])}.")
    node = {"_target_": group_option("model", name)["_target_"], "name": name, **params}
    return build_model_from_config(node, in_channels, image_size, num_classes)


# ---------------------------------------------------------------------------- datasets


def dataset_node(dataset_cfg: Any) -> dict[str, Any]:
    """The dataset config as a plain dict with its ``_target_``; a node written without one (older
    runs' configs, hand-written ones) takes the class of the option its ``name`` names."""
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(dataset_cfg, resolve=True) if OmegaConf.is_config(dataset_cfg) \
        else dict(dataset_cfg)
    if "_target_" not in node:
        node["_target_"] = group_option("dataset", node["name"])["_target_"]
    return node


def build_source(dataset_cfg: Any) -> DataSource:
    """The DataSource a dataset config names, built from its own keys (not the SPLIT_KEYS)."""
    node = dataset_node(dataset_cfg)
    return instantiate({k: v for k, v in node.items() if k not in SPLIT_KEYS})


def load_raw(dataset_cfg: Any) -> RawDataset:
    return build_source(dataset_cfg).load()
