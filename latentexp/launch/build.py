"""From a run spec and its data to a ready ``Trainer``: the model, the loss, the optimizer and the
learning-rate schedule, each built from its ``_target_`` config node."""

from __future__ import annotations

import inspect

import torch

from latentexp.config.components import build_loss_from_config, build_model_from_config
from latentexp.config.tree import instantiate, target_class
from latentexp.data import DeviceData
from latentexp.data.samplers import check_m_per_class
from latentexp.runs.rundir import RunDir
from latentexp.runs.spec import RunSpec
from latentexp.runtime import seed_everything
from latentexp.train.settings import TrainerSettings
from latentexp.train.trainer import Trainer


def fused_where_supported(node, device: torch.device) -> dict:
    """``fused=True`` (one kernel per step instead of a dozen per parameter) for an optimizer class
    that takes it on this device (CUDA, and the CPU since PyTorch 2.4: 3x cheaper Adam steps there,
    docs/speed.md), unless the config chose its own implementation (fused, foreach or
    differentiable): never overrides it."""
    chosen = any(node.get(key) is not None and node.get(key) is not False
                 for key in ("fused", "foreach", "differentiable"))
    takes = "fused" in inspect.signature(target_class(node)).parameters
    on_device = device.type in ("cuda", "cpu")  # the CPU's kernels came with PyTorch 2.4 (pyproject)
    return {"fused": True} if on_device and takes and not chosen else {}


def build_trainer(spec: RunSpec, data: DeviceData, device: torch.device,
                  files: RunDir | None = None) -> Trainer:
    config = spec.config
    settings = TrainerSettings.from_config(config["trainer"])
    if settings.sampler == "m_per_class":  # refused here, before any work, not in the first epoch
        check_m_per_class(len(torch.unique(data.train_y)), settings.batch_size, settings.m_per_class)
    seed_everything(spec.seed)  # the model's and the loss's initial weights
    model = build_model_from_config(config["model"], data.in_channels, data.image_size, data.num_classes)
    model = model.to(device)
    if settings.channels_last:  # faster convolutions on CUDA and CPU alike (docs/decisions.md)
        model = model.to(memory_format=torch.channels_last)
    feature = target_class(config["loss"]).feature
    loss = build_loss_from_config(config["loss"], num_classes=data.num_classes,
                                  embedding_size=model.feature_dims.get(feature, data.num_classes),
                                  classifier=model.classifier).to(device)
    # A head loss owns parameters (class weights, signatures): optimise them too.
    params = [*model.parameters(), *loss.parameters()]
    optimizer = instantiate(config["optimizer"], params, **fused_where_supported(config["optimizer"], device))
    scheduler = instantiate(config["lr_scheduler"], optimizer)
    return Trainer(model, loss, optimizer, scheduler, data, settings, spec.eq11_lambda, spec.seed, device,
                   identity=spec.hash, files=files)
