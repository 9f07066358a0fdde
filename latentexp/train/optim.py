"""Optimizers and learning-rate schedules from the `optimizer` and `lr_scheduler` config groups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, MultiStepLR, ReduceLROnPlateau, StepLR

from latentexp.errors import ConfigError

OPTIMIZERS = ("adam", "sgd")
SCHEDULERS = ("plateau", "step", "multistep", "constant")


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: Mapping, device: torch.device):
    name, fused = cfg["name"], device.type == "cuda"
    if name == "adam":
        return torch.optim.Adam(params, lr=float(cfg["lr"]), weight_decay=float(cfg.get("weight_decay", 0.0)),
                                fused=fused)
    if name == "sgd":
        return torch.optim.SGD(params, lr=float(cfg["lr"]), momentum=float(cfg.get("momentum", 0.0)),
                               nesterov=bool(cfg.get("nesterov", False)),
                               weight_decay=float(cfg.get("weight_decay", 0.0)), fused=fused)
    raise ConfigError(f"optimizer.name={name!r} is invalid: expected one of {', '.join(OPTIMIZERS)}.")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Mapping) -> LRScheduler | ReduceLROnPlateau:
    name = cfg["name"]
    if name == "constant":
        return LambdaLR(optimizer, lambda epoch: 1.0)
    if name == "plateau":  # on validation accuracy, so mode="max"
        return ReduceLROnPlateau(optimizer, mode="max", factor=float(cfg["factor"]),
                                 patience=int(cfg["patience"]))
    if name == "step":
        return StepLR(optimizer, step_size=int(cfg["step_size"]), gamma=float(cfg["gamma"]))
    if name == "multistep":
        return MultiStepLR(optimizer, milestones=[int(m) for m in cfg["milestones"]],
                           gamma=float(cfg["gamma"]))
    raise ConfigError(f"lr_scheduler.name={name!r} is invalid: expected one of {', '.join(SCHEDULERS)}.")


def step_scheduler(scheduler, val_accuracy: float) -> None:
    """One step per epoch; the plateau schedule watches validation accuracy."""
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(val_accuracy)
    else:
        scheduler.step()
