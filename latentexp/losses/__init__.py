"""Losses: one module each, named by a file of the ``loss`` config group whose ``_target_`` is the
class (``conf/loss/<name>.yaml``). ``build_loss("latent_boost", T=0.9)(features, labels)``.

There is no registry to edit: a loss is the option files of ``conf/loss/`` (see
docs/losses/README.md, "Adding a loss").
"""

from __future__ import annotations

import inspect
from typing import Any

from latentexp.config_tree import config_groups, group_option, instantiate, target_class
from latentexp.errors import ConfigError
from latentexp.losses.base import CONTEXT_PARAMETERS, AuxiliaryLoss, HeadLoss, Loss, ParameterError, loss_kind


def loss_names() -> list[str]:
    return config_groups()["loss"]


def loss_class(name: str) -> type[Loss]:
    """The class of loss ``name`` (the ``_target_`` of conf/loss/<name>.yaml)."""
    if name not in loss_names():
        raise ConfigError(f"Unknown loss {name!r}. Valid choices: {', '.join(loss_names())}.")
    return target_class(group_option("loss", name))


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """A class's named constructor parameters (no ``self``, ``*args`` or ``**kwargs``)."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {p.name: p for p in inspect.signature(cls).parameters.values()
            if p.name != "self" and p.kind not in variadic}


def loss_parameters(cls: type) -> list[str]:
    """The parameters a user sets for a loss class (its config keys)."""
    return [p for p in constructor_parameters(cls) if p not in CONTEXT_PARAMETERS]


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


__all__ = ["AuxiliaryLoss", "HeadLoss", "Loss", "build_loss", "build_loss_from_config", "check_parameters",
           "loss_class", "loss_kind", "loss_names", "loss_parameters"]
