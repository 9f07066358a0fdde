"""The run spec: what a run is, resolved once per job from its composed config.

A ``RunSpec`` holds the config the run trains, its identity (the part of that config that can
change the numbers) and the identity's hash, the readable fields (dataset, model, loss, the loss's
kind, λ, seed), the run name and the run directory. The trainer, result.json, `status`, `report`,
the presets and the dry run all read it; nothing re-derives it.

λ's rules live here and nowhere else:

- An auxiliary loss is mixed with the model's cross-entropy, L = λ·L_aux + (1 − λ)·L_CE (Eq. 11,
  ``losses.base.mix_with_cross_entropy``, which the trainer calls). At λ = 0 it has no weight and
  is not computed.
- So every auxiliary loss at λ = 0 *is* the cross-entropy baseline, and cross-entropy ignores λ:
  all of them are one run, ``loss=ce`` at λ = 0, whatever loss the job named.
- A head loss ignores the trainer's λ, so its runs have none, unless one of its own parameters
  plays λ's role (COREL's ``lam``, which follows ``lambda`` by default): that value is its λ.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from latentexp.errors import ConfigError
from latentexp.runs.rundir import RunDir

# Part of every identity: bumped whenever a change alters what runs compute or how they are named,
# so that a new version never reuses, resumes or averages in a run of an older one.
# 4: the data's fingerprint and the user's code in the identity; 5: datasets are _target_ nodes
# (latentexp.data.datasets), a pretrained weights file is fingerprinted like the data; 6: the CPU
# training step draws dropout masks from random bytes and steps Adam fused (docs/speed.md), and the
# new keys trainer.test_checkpoint and the CNN's model.latent (docs/models.md)
FORMAT_VERSION = 6

BASELINE_LOSS = "ce"
RUN_NAME_MAX = 255  # bytes in a directory name (Linux's NAME_MAX)
HASH_LENGTH = 10  # hex digits of the identity's SHA-256 that end a run's name

# Dotted keys that say where or how visibly a run happens, never what it computes.
NON_IDENTITY_KEYS = (
    "device",
    "output_root",
    "dataset.root",
    "dataset.path",  # where an .npz is: its content is the data fingerprint
    "dataset.download",
    "model.pretrained",  # where a weights file is: its content is the identity's "weights"
    "trainer.progress",
    "trainer.eval_batch_size",  # evaluation in chunks: the same predictions whatever their size
    "trainer.gradient_diagnostics_every",  # a probe beside the step: the same results with it or not
    "logger",  # trackers watch a run; they change nothing it computes
    "loss.report",  # the report's title and place for the loss (conf/loss/<name>.yaml)
)

@dataclass(frozen=True)
class RunSpec:
    name: str  # <dataset>-<model>-<loss>[-lam<λ>]-seed<seed>-<hash>
    hash: str
    dataset: str
    model: str
    loss: str
    loss_kind: str  # "auxiliary" or "head"
    lam: float | None  # the run's λ; None where the loss has none
    lambda_key: str | None  # the config key that holds λ ("lambda", "loss.lam"), None where none
    seed: int
    config: dict[str, Any] = field(repr=False, hash=False)  # what the run trains
    identity: dict[str, Any] = field(repr=False, hash=False)  # what the hash covers
    run_dir: Path | None = field(default=None, compare=False)
    format: int = FORMAT_VERSION

    @classmethod
    def from_config(cls, cfg: DictConfig | dict, run_dir: str | Path | None = None,
                    resolve_data: bool = True, fetch_data: bool = True) -> RunSpec:
        """The spec of a composed (and validated) config; ``run_dir`` defaults to
        ``<output_root>/runs/<name>``. The identity holds the fingerprint of the files the dataset
        config reads (found, or downloaded where allowed; a DataError where missing) and a hash of
        the user's own ``_target_`` code. ``resolve_data=False`` leaves the data out (``"data":
        null``), for specs that only count or label runs (presets, hand-written test runs) and
        never name a real one; ``fetch_data=False`` (a --dry-run) refuses a dataset that is not
        there instead of downloading it."""
        from latentexp.config.tree import group_option, target_class
        from latentexp.losses.base import loss_kind
        from latentexp.runs.code_identity import user_code

        config = _numbers_as_declared(plain_config(cfg))
        loss = config["loss"]
        kind = loss_kind(target_class(loss))
        if loss["name"] == BASELINE_LOSS or (kind == "auxiliary" and _number(config.get("lambda")) == 0.0):
            config["loss"], config["lambda"] = copy.deepcopy(group_option("loss", BASELINE_LOSS)), 0.0
            lam, lambda_key = 0.0, "lambda"
        elif kind == "head":
            config.pop("lambda", None)  # unused, or carried by the loss's own parameter
            parameter = target_class(loss).lambda_parameter
            lam = _number(loss[parameter]) if parameter else None
            lambda_key = f"loss.{parameter}" if parameter else None
        else:
            lam, lambda_key = _number(config.get("lambda")), "lambda"
        parts = [config["dataset"]["name"], config["model"]["name"], config["loss"]["name"]]
        if lam is not None:
            parts.append(f"lam{_text(lam)}")
        parts = [*map(str, parts), f"seed{config.get('seed')}"]
        _check_name_length("-".join([*parts, "h" * HASH_LENGTH]), config)  # before any data is looked up
        identity = {**_without(config, NON_IDENTITY_KEYS), "format": FORMAT_VERSION, "data": None}
        if resolve_data:
            from latentexp.config.components import build_source  # the data stack: only where a run is named
            from latentexp.data.identity import data_fingerprint

            identity["data"] = data_fingerprint(build_source(config["dataset"]), config["dataset"]["name"],
                                                fetch=fetch_data)
            weights = config["model"].get("pretrained")
            if weights:
                from latentexp.data.fingerprint import fingerprint

                identity["weights"] = fingerprint({"weights": Path(weights).expanduser()})
        code = user_code(config)
        if code:
            identity["code"] = code
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode())
        short_hash = digest.hexdigest()[:HASH_LENGTH]
        name = "-".join([*parts, short_hash])
        if run_dir is None:
            run_dir = Path(str(config.get("output_root"))) / "runs" / name
        return cls(name=name, hash=short_hash, dataset=config["dataset"]["name"],
                   model=config["model"]["name"], loss=config["loss"]["name"], loss_kind=kind, lam=lam,
                   lambda_key=lambda_key, seed=config.get("seed"), config=config, identity=identity,
                   run_dir=Path(run_dir))

    @property
    def files(self) -> RunDir:
        if self.run_dir is None:
            raise ValueError(f"the spec of {self.name} has no run directory")
        return RunDir(self.run_dir)

    @property
    def is_baseline(self) -> bool:
        return self.loss == BASELINE_LOSS

    @property
    def eq11_lambda(self) -> float | None:
        """The λ that mixes the loss with cross-entropy (0 for the baseline); None for a head
        loss, which is the whole objective (its own λ parameter, if any, is inside it)."""
        return self.lam if self.loss_kind == "auxiliary" else None

    @property
    def data_fingerprint(self) -> str | None:
        return self.identity.get("data")

    def to_json(self) -> dict[str, Any]:
        """Every field but the run directory (a run tree can move)."""
        return {"format": self.format, "name": self.name, "hash": self.hash, "dataset": self.dataset,
                "model": self.model, "loss": self.loss, "loss_kind": self.loss_kind, "lambda": self.lam,
                "lambda_key": self.lambda_key, "seed": self.seed, "config": self.config,
                "identity": self.identity}

    @classmethod
    def from_json(cls, data: dict[str, Any], run_dir: str | Path | None = None) -> RunSpec:
        fields = {k: data[k] for k in ("format", "name", "hash", "dataset", "model", "loss", "loss_kind",
                                       "lambda_key", "seed", "config", "identity")}
        return cls(**fields, lam=data["lambda"], run_dir=Path(run_dir) if run_dir is not None else None)


def _check_name_length(name: str, config: dict[str, Any]) -> None:
    """A run's name is its directory's: more than a directory name holds is said before any lookup."""
    if len(os.fsencode(name)) <= RUN_NAME_MAX:
        return
    lengths = {f"{k}.name": len(str(config[k]["name"])) for k in ("dataset", "model", "loss")}
    longest = max(lengths, key=lengths.get)
    raise ConfigError(f"the run's name would be {len(os.fsencode(name))} bytes, more than a directory name "
                      f"can hold ({RUN_NAME_MAX}): it is made of the dataset's, model's and loss's names, "
                      f"and {longest} is {lengths[longest]} characters. Give {longest} a shorter value.")


def plain_config(cfg: DictConfig | dict) -> dict[str, Any]:
    """The resolved config as plain containers (a deep copy), without Hydra's own node."""
    if isinstance(cfg, DictConfig):
        # Key by key: the root may hold a `hydra` node that must not be resolved here.
        data = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
                for k in cfg if k != "hydra"}
    else:
        data = {k: v for k, v in cfg.items() if k != "hydra"}
    return json.loads(json.dumps(data))


def _numbers_as_declared(config: dict[str, Any]) -> dict[str, Any]:
    """Integers where a float is declared become floats (``lambda=1`` is ``lambda=1.0``,
    ``optimizer.weight_decay=0`` is 0.0): the identity depends on values, not on their spelling.
    Declared by the class's own annotations for a ``_target_`` node (the constructor is the one
    declaration of a loss's, optimizer's or model's parameters), by conf/config.yaml's defaults for
    the top-level keys (``lambda`` cannot be a dataclass field: it is a Python keyword). The trainer's
    settings are a structured config, typed as it is composed (latentexp.train.settings)."""
    from latentexp.config.tree import root_config

    declared = {k for k, v in root_config().items() if isinstance(v, float)}
    for group, node in config.items():
        if isinstance(node, dict) and "_target_" in node:
            declared |= {f"{group}.{k}" for k in _float_parameters(node["_target_"])}
    for dotted in declared:
        *parents, leaf = dotted.split(".")
        node = config
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            node[leaf] = _as_float(node[leaf])
    return config


def _as_float(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list):
        return [_as_float(v) for v in value]
    return value


@functools.cache
def _float_parameters(target: str) -> frozenset[str]:
    """The constructor parameters of a class declared float, alone or in a union or a sequence
    (``float | None``, ``Sequence[float]``) and never int, or whose default is a float."""
    import inspect
    import typing

    from hydra.utils import get_class

    cls = get_class(target)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - a class whose annotations do not evaluate: its defaults decide
        hints = {}
    names = set()
    for name, p in inspect.signature(cls).parameters.items():
        types = _types_in(hints.get(name))
        if (float in types and int not in types) or isinstance(p.default, float):
            names.add(name)
    return frozenset(names)


def _types_in(hint: Any) -> set:
    """Every class a type hint names, through unions and generics (``Sequence[float] | None``)."""
    import typing

    if hint is None:
        return set()
    found = {hint} if isinstance(hint, type) else set()
    for argument in typing.get_args(hint):
        found |= _types_in(argument)
    return found


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"dotted.key": value}`` (an empty mapping contributes nothing)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _without(data: dict[str, Any], dotted_keys: tuple[str, ...]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for dotted in dotted_keys:
        *parents, leaf = dotted.split(".")
        node = data
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return data


def _number(value: Any) -> Any:
    """``value`` as a float; a value that is not a number stays as it is, for validation to report
    (names are computed before validation runs, for Hydra's run directory)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
