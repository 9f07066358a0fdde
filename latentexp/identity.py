"""Run identity: the run directory is a pure function of the composed config.

The name is readable (dataset, model, loss, λ, seed) followed by a short hash of every other
config value that can change the numbers. Keys that only say *where* or *how visibly* a run
happens (device, output root, data root, progress bars) are not part of the identity, so the
same experiment launched on another machine or with another data path finds its finished run.
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


def identity_dict(cfg: DictConfig | dict) -> dict[str, Any]:
    """The resolved config without Hydra's node and without the non-identity keys."""
    data = json.loads(json.dumps(plain_config(cfg)))  # deep copy into plain JSON types
    for dotted in NON_IDENTITY_KEYS:
        *parents, leaf = dotted.split(".")
        node = data
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return data


def identity_hash(cfg: DictConfig | dict) -> str:
    blob = json.dumps(identity_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _fmt_lambda(value: Any) -> str:
    # Never raise here: the name is computed before validation, which reports bad values.
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def run_name(cfg: DictConfig | dict) -> str:
    """``<dataset>-<model>-<loss>-lam<λ>-seed<seed>-<hash>``."""
    return "-".join(
        [
            str(cfg["dataset"]["name"]),
            str(cfg["model"]["name"]),
            str(cfg["loss"]["name"]),
            f"lam{_fmt_lambda(cfg['lambda'])}",
            f"seed{cfg['seed']}",
            identity_hash(cfg),
        ]
    )


def _resolver(*, _root_: DictConfig) -> str:
    return run_name(_root_)


def register_resolvers() -> None:
    """Make ``${latentexp_run_name:}`` available to the Hydra configs."""
    if not OmegaConf.has_resolver("latentexp_run_name"):
        OmegaConf.register_new_resolver("latentexp_run_name", _resolver)
