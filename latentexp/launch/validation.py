"""Checks every config value before any work starts; errors name the key and the valid range."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from latentexp.errors import ConfigError
from latentexp.launch.trackers import check_trackers
from latentexp.train.settings import is_int as _is_int

# Constructor arguments the trainer passes to a model (from the data).
MODEL_CONTEXT = ("in_channels", "image_size", "num_classes")


def _get(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, throw_on_missing=False, default="<absent>")
    if value == "<absent>":
        raise ConfigError(f"The config has no key {key!r}; add it with +{key}=VALUE or check the spelling.")
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(cfg: DictConfig, key: str, ok: Callable[[Any], bool], expected: str, hint: str = "") -> None:
    value = _get(cfg, key)
    if not ok(value):
        raise ConfigError(f"{key}={value!r} is invalid: expected {expected}.{(' ' + hint) if hint else ''}")


def _check_if_set(cfg: DictConfig, key: str, ok: Callable[[Any], bool], expected: str) -> None:
    if OmegaConf.select(cfg, key, default="<absent>") != "<absent>":
        _check(cfg, key, ok, expected)


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError on the first bad value."""
    _check_no_unknown_keys(cfg)
    _check(cfg, "lambda", lambda v: _is_number(v) and 0.0 <= v <= 1.0, "a number in [0, 1]",
           "λ weights the distance loss against cross-entropy (Eq. 11): 0 is the baseline, "
           "e.g. lambda=0.75.")
    _check(cfg, "seed", lambda v: _is_int(v) and 0 <= v < 2**32, "an integer from 0 to 2**32 - 1",
           "NumPy seeds its generators with 32-bit numbers; e.g. seed=0.")
    _check(cfg, "device", lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v),
           "one of auto, cpu, cuda, cuda:N")
    _validate_paths(cfg)
    _validate_dataset(cfg)
    _validate_trainer(cfg)
    _validate_optimization(cfg)
    _validate_model(cfg)
    _validate_loss(cfg)
    check_trackers(OmegaConf.to_container(cfg.logger) if cfg.get("logger") else None)


def _check_no_unknown_keys(cfg: DictConfig) -> None:
    """A key that no config uses (``+foo=1``) would change the run's hash and nothing else."""
    from latentexp.config.tree import config_groups, root_config

    root = root_config()
    known = {str(k) for k in root if k not in ("defaults", "hydra")} | set(config_groups()) | {"hydra"}
    unknown = sorted(str(k) for k in cfg if k not in known)
    if unknown:
        raise ConfigError(f"{unknown[0]} is not a setting of latentexp: no part of it reads that key, so it "
                          f"would only change the run's name. Remove +{unknown[0]}=...; the settings are "
                          f"{', '.join(sorted(known - {'hydra', 'experiment'}))} and their keys "
                          f"(`latentexp train --cfg job`).")


# Linux's limits: a path of at most PATH_MAX bytes, each part of it at most NAME_MAX.
PATH_MAX, NAME_MAX = 4096, 255
PATH_KEYS = ("output_root", "dataset.root", "dataset.path", "model.pretrained")


def _validate_paths(cfg: DictConfig) -> None:
    """A path no filesystem can hold, said as such before anything looks it up."""
    for key in PATH_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if not isinstance(value, str):
            continue
        parts = [len(os.fsencode(part)) for part in value.split("/")]  # bytes, as the kernel counts
        if len(os.fsencode(value)) > PATH_MAX or max(parts) > NAME_MAX:
            raise ConfigError(f"{key}={value[:40]}… is {len(value)} characters: a path holds at most "
                              f"{PATH_MAX} bytes and each of its parts at most {NAME_MAX} (one here is "
                              f"{max(parts)}); give a shorter path.")


def _validate_dataset(cfg: DictConfig) -> None:
    from latentexp.data.datasets import SPLIT_KEYS

    _check_target(cfg, "dataset", context=(), trainer_keys=SPLIT_KEYS)
    for key in ("dataset.limit_train", "dataset.limit_test"):
        _check(cfg, key, lambda v: v is None or (_is_int(v) and v >= 2), "null or an integer >= 2")
    _check(cfg, "dataset.val_fraction", lambda v: _is_number(v) and 0.0 < v < 1.0, "a number in (0, 1)")
    _check(cfg, "dataset.augment", lambda v: isinstance(v, bool), "true or false")
    for key in ("dataset.mean", "dataset.std"):
        _check(cfg, key, lambda v: v is None or (len(v) > 0 and all(_is_number(x) for x in v)),
               "null (computed from the training images) or a list with one number per channel")
    _check(cfg, "dataset.std", lambda v: v is None or all(x > 0 for x in v), "positive numbers")
    _check_if_set(cfg, "dataset.image_size", lambda v: v is None or (_is_int(v) and v >= 1) or (
        not isinstance(v, (int, float, str)) and len(v) == 2 and all(_is_int(x) and x >= 1 for x in v)),
        "null, a size such as 32, or [height, width], each at least 1")
    _check_if_set(cfg, "dataset.channels", lambda v: v in (None, 1, 3), "null, 1 or 3")
    _check_if_set(cfg, "dataset.test_fraction", lambda v: _is_number(v) and 0.0 < v < 1.0,
                  "a number in (0, 1)")


def _validate_trainer(cfg: DictConfig) -> None:
    """The trainer's declared settings (latentexp.train.settings): no other key, each in its range."""
    from latentexp.train import settings as trainer_settings

    unknown = sorted(set(cfg.trainer) - set(trainer_settings.TrainerSettings.__dataclass_fields__))
    if unknown:
        raise ConfigError(trainer_settings.no_such_setting(unknown))
    for name in trainer_settings.TrainerSettings.__dataclass_fields__:
        _get(cfg, f"trainer.{name}")  # a config composed elsewhere may lack one
    message = trainer_settings.check(cfg.trainer)
    if message:
        raise ConfigError(message)


def _validate_optimization(cfg: DictConfig) -> None:
    """Known keys by their ranges, the rest against the class's signature, then a trial build on a
    dummy parameter, which catches whatever the class itself refuses."""
    import torch

    _check(cfg, "optimizer.lr", lambda v: _is_number(v) and v > 0, "a positive number")
    _check_if_set(cfg, "optimizer.weight_decay", lambda v: _is_number(v) and v >= 0, "a non-negative number")
    _check_if_set(cfg, "optimizer.momentum", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
    _check_if_set(cfg, "optimizer.nesterov", lambda v: isinstance(v, bool), "true or false")
    _check_if_set(cfg, "lr_scheduler.factor", lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]")
    _check_if_set(cfg, "lr_scheduler.patience", lambda v: _is_int(v) and v >= 0, "a non-negative integer")
    _check_if_set(cfg, "lr_scheduler.gamma", lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]")
    _check_if_set(cfg, "lr_scheduler.step_size", lambda v: _is_int(v) and v >= 1, "a positive integer")
    _check_if_set(cfg, "lr_scheduler.milestones",
                  lambda v: len(v) > 0 and all(_is_int(m) and m >= 1 for m in v), "a list of positive epochs")
    optimizer_class = _check_target(cfg, "optimizer", context=("params",))
    scheduler_class = _check_target(cfg, "lr_scheduler", context=("optimizer",))
    from latentexp.config.tree import instantiate

    if scheduler_class is torch.optim.lr_scheduler.ReduceLROnPlateau:
        _check(cfg, "lr_scheduler.mode", lambda v: v == "max", "max",
               "The plateau schedule is stepped with the validation accuracy, which should rise.")
    key = _settings_key(cfg.optimizer, cfg.lr_scheduler)
    if key in _TRIED_OPTIMIZERS:
        return
    try:
        optimizer = instantiate(cfg.optimizer, [torch.nn.Parameter(torch.zeros(1))])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"optimizer ({optimizer_class.__name__}) refuses its settings: {err}; check the "
                          f"optimizer.* values.") from None
    try:
        instantiate(cfg.lr_scheduler, optimizer)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"lr_scheduler ({scheduler_class.__name__}) refuses its settings: {err}; check the "
                          f"lr_scheduler.* values.") from None
    _TRIED_OPTIMIZERS.add(key)


# Settings already built in this process, and accepted: a sweep's jobs mostly share them, and a
# trial build costs milliseconds each (1,688 preset jobs).
_TRIED_OPTIMIZERS: set[str] = set()
_TRIED_LOSSES: set[str] = set()


def _settings_key(*nodes) -> str:
    import json

    plain = [OmegaConf.to_container(n, resolve=True) if OmegaConf.is_config(n) else n for n in nodes]
    return json.dumps(plain, sort_keys=True, default=str)


def _validate_model(cfg: DictConfig) -> None:
    from latentexp.config.tree import constructor_arguments

    cls = _check_target(cfg, "model", context=MODEL_CONTEXT)
    check = getattr(cls, "check_settings", None)  # a class's own checks that need no data (models.named)
    if check is not None:
        check(**constructor_arguments(cfg.model))


def _validate_loss(cfg: DictConfig) -> None:
    """Generic checks (the class, its keys and their types), then the class's own: it is built once
    on a dummy batch, as the optimizer is on a dummy parameter, and whatever it refuses is the
    error. No loss is named here; each loss's rules live in its class."""
    from latentexp.losses.base import CONTEXT_PARAMETERS, loss_kind

    cls = _target(cfg, "loss")
    try:
        kind = loss_kind(cls)
    except TypeError as err:
        raise ConfigError(f"loss._target_={cfg.loss._target_}: {err}.") from None
    _check_target(cfg, "loss", context=CONTEXT_PARAMETERS)
    _try_loss_on_a_dummy_batch(cfg, cls)
    if kind == "auxiliary" and cfg["lambda"] > 0 and cls.batch_needs:
        _check_batches_can_hold(cfg, _get(cfg, "loss.name"), cls.batch_needs)


# The dummy batch a loss is tried on: two samples of each of three classes, 4-wide features.
DUMMY_CLASSES, DUMMY_WIDTH = 3, 4


def _try_loss_on_a_dummy_batch(cfg: DictConfig, cls: type) -> None:
    import torch

    from latentexp.config.components import build_loss_from_config

    key = _settings_key(cfg.loss, cfg.trainer.max_epochs)
    if key in _TRIED_LOSSES:
        return
    torch_state = torch.random.get_rng_state()  # a head loss draws its weights: leave no trace
    try:
        classifier = torch.nn.Linear(DUMMY_WIDTH, DUMMY_CLASSES)
        loss = build_loss_from_config(cfg.loss, num_classes=DUMMY_CLASSES, embedding_size=DUMMY_WIDTH,
                                      classifier=classifier)  # its refusal: a ConfigError already
        loss.train()
        loss.set_epoch(0, cfg.trainer.max_epochs)
        loss(torch.randn(2 * DUMMY_CLASSES, DUMMY_WIDTH), torch.arange(DUMMY_CLASSES).repeat(2))
        _TRIED_LOSSES.add(key)
    except (TypeError, ValueError) as err:  # refused by the forward pass
        raise ConfigError(f"loss={cfg.loss.name} ({cls.__name__}) refuses its settings: {err}; check the "
                          f"loss.* values.") from None
    finally:
        torch.random.set_rng_state(torch_state)


def _check_batches_can_hold(cfg: DictConfig, name: str, needs: str) -> None:
    """Refuse batch settings under which the loss can never act on a sample (it would train as
    (1 − λ)·cross-entropy under the loss's name)."""
    from latentexp.losses.base import PAIR, POSITIVE, POSITIVE_AND_NEGATIVE

    batch, m = cfg.trainer.batch_size, cfg.trainer.m_per_class
    if cfg.trainer.sampler == "random":
        smallest = {PAIR: 2, POSITIVE: 2, POSITIVE_AND_NEGATIVE: 3}[needs]
        impossible = batch < smallest
        fix = f"trainer.batch_size >= {smallest} (the default 128, or trainer.sampler=m_per_class)"
    else:
        impossible = (needs != PAIR and m < 2) or (needs == POSITIVE_AND_NEGATIVE and batch // m < 2) \
            or batch < 2
        fix = "trainer.m_per_class >= 2 and trainer.batch_size >= 2 × trainer.m_per_class"
    if impossible:
        raise ConfigError(f"loss={name} acts on a sample only when its batch holds {needs}, which no batch "
                          f"of trainer.batch_size={batch} with trainer.sampler={cfg.trainer.sampler}"
                          f"{f' (m_per_class={m})' if cfg.trainer.sampler == 'm_per_class' else ''} can: "
                          f"the run would train (1 − λ)·cross-entropy under {name}'s name. Use {fix}.")


def _target(cfg: DictConfig, group: str) -> type:
    from latentexp.config.tree import target_class

    target = _get(cfg, f"{group}._target_")
    try:
        return target_class(cfg[group])
    except Exception as err:  # noqa: BLE001 - any import failure is the same user error
        raise ConfigError(f"{group}._target_={target} cannot be imported ({err}); give a class path such "
                          f"as those in conf/{group}/.") from None


def _check_target(cfg: DictConfig, group: str, context: tuple[str, ...],
                  trainer_keys: tuple[str, ...] = ()) -> type:
    """Every key of a ``_target_`` node is a constructor parameter of its class, of the type of that
    parameter's default (a number, a bool, a string); ``context`` are the ones the trainer passes,
    ``trainer_keys`` those it reads itself (never passed to the class). A ``name`` that is one of
    the group's option files must come with that file's class."""
    from latentexp.config.tree import LABEL_KEYS, config_groups, group_option

    cls = _target(cfg, group)
    name = _get(cfg, f"{group}.name")
    if name in config_groups()[group] and group_option(group, name)["_target_"] != cfg[group]._target_:
        raise ConfigError(f"{group}.name={name} names conf/{group}/{name}.yaml, whose class is "
                          f"{group_option(group, name)['_target_']}, but {group}._target_="
                          f"{cfg[group]._target_}: give your own class a name of its own "
                          f"({group}.name=...), so that runs and reports say what it is.")
    signature = inspect.signature(cls).parameters
    takes_any = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in signature.values())
    settable = [n for n, p in signature.items() if n not in context and n != "self"
                and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    settable += [k for k in trainer_keys if k not in settable]
    for key in cfg[group]:
        if key in ("_target_", *LABEL_KEYS, *trainer_keys):
            continue
        if key in context:
            raise ConfigError(f"{group}.{key} comes from the data and the model, not from the config; "
                              f"remove it (the parameters of {cls.__name__} to set: "
                              f"{', '.join(settable) or 'none'}).")
        if key not in signature and not takes_any:
            raise ConfigError(f"{group}.{key} is not a parameter of {cls.__name__}; its parameters: "
                              f"{', '.join(settable) or 'none'}.")
        default = signature[key].default if key in signature else inspect.Parameter.empty
        if isinstance(default, bool):
            _check(cfg, f"{group}.{key}", lambda v: isinstance(v, bool), "true or false")
        elif isinstance(default, (int, float)):
            _check(cfg, f"{group}.{key}", _is_number, f"a number (default {default})")
        elif isinstance(default, str):  # a mode name, or a count where the mode is "all" (triplets)
            _check(cfg, f"{group}.{key}", lambda v: isinstance(v, str) or _is_int(v),
                   f"a string or an integer (default {default!r})")
    return cls
