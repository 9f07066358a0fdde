"""Checks every config value before any work starts; errors name the key and the valid range."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from latentexp.errors import ConfigError

DATASETS = ("fashion_mnist", "cifar10", "cifar100", "mnist", "svhn")


def _get(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, throw_on_missing=False, default="<absent>")
    if value == "<absent>":
        raise ConfigError(f"The config has no key {key!r}; add it with +{key}=VALUE or check the spelling.")
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(cfg: DictConfig, key: str, ok: Callable[[Any], bool], expected: str, hint: str = "") -> None:
    value = _get(cfg, key)
    if not ok(value):
        raise ConfigError(f"{key}={value!r} is invalid: expected {expected}.{(' ' + hint) if hint else ''}")


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError on the first bad value."""
    _check(cfg, "lambda", lambda v: _is_number(v) and 0.0 <= v <= 1.0, "a number in [0, 1]",
           "λ weights the distance loss against cross-entropy (Eq. 11): 0 is the baseline, "
           "e.g. lambda=0.75.")
    _check(cfg, "seed", lambda v: _is_int(v) and v >= 0, "a non-negative integer")
    _check(cfg, "device", lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v),
           "one of auto, cpu, cuda, cuda:N")
    _check(cfg, "dataset.name", lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}")
    for key in ("dataset.limit_train", "dataset.limit_test"):
        _check(cfg, key, lambda v: v is None or (_is_int(v) and v >= 2), "null or an integer >= 2")
    _check(cfg, "dataset.val_fraction", lambda v: _is_number(v) and 0.0 < v < 1.0, "a number in (0, 1)")
    for key in ("dataset.augment", "trainer.compile", "trainer.amp", "trainer.channels_last"):
        _check(cfg, key, lambda v: isinstance(v, bool), "true or false")
    _check(cfg, "trainer.progress", lambda v: v == "auto" or isinstance(v, bool), "auto, true or false")
    for key in ("trainer.max_epochs", "trainer.batch_size", "trainer.eval_batch_size"):
        _check(cfg, key, lambda v: _is_int(v) and v >= 1, "a positive integer")
    _check(cfg, "trainer.early_stopping_patience", lambda v: v is None or (_is_int(v) and v >= 0),
           "null (no early stopping) or a non-negative integer")
    _check(cfg, "trainer.sampler", lambda v: v in ("random", "m_per_class"), "random or m_per_class")
    _check(cfg, "trainer.m_per_class", lambda v: _is_int(v) and v >= 1, "a positive integer")
    if cfg.trainer.sampler == "m_per_class":
        _check(cfg, "trainer.batch_size", lambda v: v % cfg.trainer.m_per_class == 0,
               f"a multiple of trainer.m_per_class={cfg.trainer.m_per_class} with sampler=m_per_class")
    _validate_optimization(cfg)
    _validate_loss(cfg)


def _validate_optimization(cfg: DictConfig) -> None:
    from latentexp.train.optim import OPTIMIZERS, SCHEDULERS

    _check(cfg, "optimizer.name", lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}")
    _check(cfg, "optimizer.lr", lambda v: _is_number(v) and v > 0, "a positive number")
    _check(cfg, "optimizer.weight_decay", lambda v: _is_number(v) and v >= 0, "a non-negative number")
    if cfg.optimizer.name == "sgd":
        _check(cfg, "optimizer.momentum", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
        _check(cfg, "optimizer.nesterov", lambda v: isinstance(v, bool), "true or false")
    name = _get(cfg, "lr_scheduler.name")
    _check(cfg, "lr_scheduler.name", lambda v: v in SCHEDULERS, f"one of {', '.join(SCHEDULERS)}")
    if name == "plateau":
        _check(cfg, "lr_scheduler.factor", lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)")
        _check(cfg, "lr_scheduler.patience", lambda v: _is_int(v) and v >= 0, "a non-negative integer")
    elif name in ("step", "multistep"):
        _check(cfg, "lr_scheduler.gamma", lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]")
    if name == "step":
        _check(cfg, "lr_scheduler.step_size", lambda v: _is_int(v) and v >= 1, "a positive integer")
    if name == "multistep":
        _check(cfg, "lr_scheduler.milestones",
               lambda v: len(v) > 0 and all(_is_int(m) and m >= 1 for m in v), "a list of positive epochs")


def _validate_loss(cfg: DictConfig) -> None:
    from latentexp.losses import LOSSES, check_loss_name_and_parameters

    _check(cfg, "loss.name", lambda v: v in LOSSES, f"one of {', '.join(sorted(LOSSES))}")
    if cfg.loss.name == "latent_boost":
        _check(cfg, "loss.T", lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]",
               "T is the cumulative explained-variance threshold of Eq. 7 (paper: 0.95).")
        _check(cfg, "loss.eps", lambda v: _is_number(v) and v >= 0, "a non-negative number")
        for key in ("loss.alpha0", "loss.beta0"):
            _check(cfg, key, lambda v: _is_number(v) and v >= 0, "a non-negative number")
    if cfg.loss.name in ("corel_gaussian", "corel_cosine"):
        _check(cfg, "loss.lam", lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]",
               "COREL's λ weighs attraction against repulsion (it follows the top-level lambda).")
    if cfg.loss.name == "lmdl":
        from latentexp.losses.lmdl import MOMENTUM_MODES

        _check(cfg, "loss.momentum", lambda v: v in MOMENTUM_MODES, f"one of {', '.join(MOMENTUM_MODES)}")
    check_loss_name_and_parameters(cfg.loss.name, loss_params(cfg))  # unknown keys name the valid ones
    _check_loss_parameter_types(cfg, LOSSES[cfg.loss.name])


def _check_loss_parameter_types(cfg: DictConfig, loss_cls) -> None:
    """Each loss parameter has the type of its default (a number, a bool, a string)."""
    import inspect

    for name, param in inspect.signature(loss_cls).parameters.items():
        if name not in cfg.loss:
            continue
        default = param.default
        if isinstance(default, bool):
            _check(cfg, f"loss.{name}", lambda v: isinstance(v, bool), "true or false")
        elif isinstance(default, (int, float)):
            _check(cfg, f"loss.{name}", _is_number, f"a number (default {default})")
        elif isinstance(default, str):  # a mode name, or a count where the mode is "all" (triplets)
            _check(cfg, f"loss.{name}", lambda v: isinstance(v, str) or _is_int(v),
                   f"a string or an integer (default {default!r})")


def loss_params(cfg: DictConfig) -> dict[str, Any]:
    params = OmegaConf.to_container(cfg.loss, resolve=True)
    params.pop("name")
    return params


def model_params(cfg: DictConfig) -> dict[str, Any]:
    params = OmegaConf.to_container(cfg.model, resolve=True)
    params.pop("name")
    return params
