"""The config tree (conf/): where it is, its groups and options, composing it outside a Hydra app,
and building the object a ``_target_`` node names."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Keys of a group node that name it for people and are not constructor arguments: ``name`` (run
# names, reports), ``report`` (a loss's title and place in the report's tables).
LABEL_KEYS = ("name", "report")


@cache
def config_dir() -> str:
    """conf/ inside an installed wheel, else the source tree's top-level conf/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"latentexp's config tree was not found next to {here}; reinstall the package.")


@cache
def root_config() -> dict[str, Any]:
    """conf/config.yaml's own keys (lambda, seed, device, output_root, ...), unresolved."""
    return OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "config.yaml"), resolve=False)


@cache
def config_groups() -> dict[str, list[str]]:
    """Each config group of conf/ and its options (the YAML files in it)."""
    root = Path(config_dir())
    return {d.name: sorted(f.stem for f in d.glob("*.yaml")) for d in sorted(root.iterdir()) if d.is_dir()}


@cache
def group_option(group: str, option: str) -> dict[str, Any]:
    """One option file of a group (``conf/<group>/<option>.yaml``) as a plain dict, unresolved."""
    path = Path(config_dir()) / group / f"{option}.yaml"
    if not path.is_file():
        valid = ", ".join(config_groups().get(group, []))
        raise KeyError(f"{group}={option} is not an option of the {group} group (valid: {valid})")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # type: ignore[return-value]


def compose(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """The config tree composed with ``overrides``, as `latentexp train` composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=overrides, return_hydra_config=with_hydra)
    finally:
        GlobalHydra.instance().clear()


def target_class(node: Any) -> type:
    """The class a node's ``_target_`` names."""
    from hydra.utils import get_class

    return get_class(node["_target_"])


def constructor_arguments(node: Any) -> dict[str, Any]:
    """A ``_target_`` node's own arguments: every key but ``_target_`` and the labels."""
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    return {k: v for k, v in plain.items() if k not in ("_target_", *LABEL_KEYS)}


def instantiate(node: Any, *args: Any, **context: Any) -> Any:
    """Build what a ``_target_`` node names (``hydra.utils.instantiate``), with its arguments plus
    ``context``: values that come from the data or the model, never from the config. The target's
    own errors (TypeError, ValueError) are raised as they are."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    spec = {"_target_": node["_target_"], **constructor_arguments(node)}
    try:
        return hydra_instantiate(spec, *args, _convert_="all", **context)
    except InstantiationException as err:  # the target's own error (TypeError, ValueError), unwrapped
        if err.__cause__ is not None:
            raise err.__cause__ from None
        raise
