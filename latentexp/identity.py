"""Run identity: the run directory is a pure function of what a run computes.

The name is readable (dataset, model, loss, λ, seed) followed by a short hash of every other
config value that can change the numbers. Keys that only say *where* or *how visibly* a run
happens (device, output root, data root, progress bars) are not part of the identity, so the
same experiment launched on another machine or with another data path finds its finished run.

Configs that compute the same thing share one identity (see ``canonical``): every auxiliary loss
at λ = 0 *is* the cross-entropy baseline, and cross-entropy ignores λ. So a Cartesian sweep
``loss=a,b lambda=0,0.5`` trains one baseline per seed, and the repeats are skipped as done.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Dotted keys that do not change a run's results.
NON_IDENTITY_KEYS = (
    "device",
    "output_root",
    "dataset.root",
    "dataset.download",
    "trainer.progress",
    "trainer.eval_batch_size",  # evaluation in chunks: the same predictions whatever their size
)


def plain_config(cfg: DictConfig | dict) -> dict[str, Any]:
    """The resolved config as plain containers, without Hydra's own node."""
    if isinstance(cfg, DictConfig):
        # Key by key: the root may hold a `hydra` node that must not be resolved here.
        return {
            k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
            for k in cfg
            if k != "hydra"
        }
    return {k: v for k, v in cfg.items() if k != "hydra"}


BASELINE_LOSS = "ce"


def effective_lambda(loss_name: str, lam: Any, loss_cfg: dict | None = None) -> float | None:
    """The λ that changes what a run computes, or None where λ has no effect.

    Auxiliary losses are weighed by λ (Eq. 11; λ = 0 is the baseline); cross-entropy is the
    baseline at λ = 0; a head-replacing loss ignores the trainer's λ unless one of its own
    parameters carries it (COREL's ``lam``, which follows ``lambda`` by default).
    """
    from latentexp.losses import LOSSES  # torch-heavy: import when first needed

    loss_cls = LOSSES.get(loss_name)
    if loss_name == BASELINE_LOSS:
        return 0.0
    if loss_cls is None or loss_cls.auxiliary:  # unknown names are reported by validation
        return _as_float(lam)
    if loss_cls.lambda_param and loss_cfg and loss_cfg.get(loss_cls.lambda_param) is not None:
        return _as_float(loss_cfg[loss_cls.lambda_param])
    return None


def _as_float(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value  # left for validation to report


def is_baseline(loss_name: str, lam: Any) -> bool:
    """Cross-entropy, or a known auxiliary loss at λ = 0 (an unknown name is never folded in)."""
    from latentexp.losses import LOSSES

    if loss_name == BASELINE_LOSS:
        return True
    return loss_name in LOSSES and LOSSES[loss_name].auxiliary and _as_float(lam) == 0.0


def canonical(cfg: DictConfig | dict) -> dict[str, Any]:
    """The resolved identity config with equivalent runs mapped onto one another.

    An auxiliary loss at λ = 0 becomes ``loss={name: ce}``; cross-entropy's λ becomes 0; a loss
    that ignores λ has no top-level ``lambda`` (its own parameters already hold any λ it uses).
    """
    data = json.loads(json.dumps(plain_config(cfg)))  # deep copy into plain JSON types
    loss = data.get("loss") or {}
    name = loss.get("name")
    if isinstance(name, str) and is_baseline(name, data.get("lambda")):
        data["loss"], data["lambda"] = {"name": BASELINE_LOSS}, 0.0
    elif isinstance(name, str) and not _loss_is_auxiliary(name):
        data.pop("lambda", None)  # unused, or carried by the loss's own parameter (COREL's lam)
    return data


def _loss_is_auxiliary(name: str) -> bool:
    from latentexp.losses import LOSSES

    return name not in LOSSES or LOSSES[name].auxiliary


def run_fields(cfg: DictConfig | dict) -> dict[str, Any]:
    """The readable part of the identity: dataset, model, loss, effective λ (None: not used), seed."""
    return _fields(canonical(cfg))


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    loss = data.get("loss") or {}
    return {
        "dataset": (data.get("dataset") or {}).get("name"),
        "model": (data.get("model") or {}).get("name"),
        "loss": loss.get("name"),
        "lambda": effective_lambda(str(loss.get("name")), data.get("lambda"), loss),
        "seed": data.get("seed"),
    }


def identity_dict(cfg: DictConfig | dict) -> dict[str, Any]:
    """The canonical config without the non-identity keys."""
    return _without_non_identity_keys(canonical(cfg))


def _without_non_identity_keys(data: dict[str, Any]) -> dict[str, Any]:
    for dotted in NON_IDENTITY_KEYS:
        *parents, leaf = dotted.split(".")
        node = data
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return data


def identity_hash(cfg: DictConfig | dict) -> str:
    return hash_identity(identity_dict(cfg))


def hash_identity(identity: dict[str, Any]) -> str:
    """The short hash of an identity dict (``identity_dict``'s output)."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def format_lambda(value: Any) -> str:
    # Never raise here: the name is computed before validation, which reports bad values.
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def run_name(cfg: DictConfig | dict) -> str:
    """``<dataset>-<model>-<loss>-lam<λ>-seed<seed>-<hash>``; no ``lam`` part where λ is unused."""
    data = canonical(cfg)  # resolved once for both the readable part and the hash
    fields = _fields(data)
    parts = [str(fields["dataset"]), str(fields["model"]), str(fields["loss"])]
    if fields["lambda"] is not None:
        parts.append(f"lam{format_lambda(fields['lambda'])}")
    return "-".join([*parts, f"seed{fields['seed']}", hash_identity(_without_non_identity_keys(data))])


def _resolver(*, _root_: DictConfig) -> str:
    return run_name(_root_)


def register_resolvers() -> None:
    """Make ``${latentexp_run_name:}`` available to the Hydra configs."""
    if not OmegaConf.has_resolver("latentexp_run_name"):
        OmegaConf.register_new_resolver("latentexp_run_name", _resolver)
