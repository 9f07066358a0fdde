"""The config tree (conf/): where it is, its groups and options, composing it outside a Hydra app,
and building the object a ``_target_`` node names."""

from __future__ import annotations

import copy
import os
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

# Keys of a group node that name it for people and are not constructor arguments: ``name`` (run
# names, reports), ``report`` (a loss's title and place in the report's tables).
LABEL_KEYS = ("name", "report")


@cache
def config_dir() -> str:
    """conf/ inside an installed wheel, else the source tree's top-level conf/."""
    here = Path(__file__).resolve().parent.parent  # the package
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
    """The config tree composed with ``overrides``, as `latentexp train` composes it.

    Hydra composes each choice of config groups (with Hydra's own settings) once per process while
    the files of conf/ are unchanged, about 0.15 s each; the overrides of values (``key=value``,
    ``+key=value``, ``~key``) are then applied to a copy by Hydra's own code, as Hydra applies
    them after it composes. Anything that code refuses, and a sweep, is composed whole by Hydra,
    which says what is wrong in its own words."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from latentexp.config.hydra_internals import apply_overrides

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
        if any(o.is_sweep_override() for o in parsed):
            raise ValueError("a sweep: Hydra refuses it")
        values = [o for o in parsed if _is_value(o)]
        cfg = copy.deepcopy(compositions(tuple(o.input_line for o in parsed if not _is_value(o)), with_hydra,
                                         _tree_state()))
        apply_overrides(values, cfg)
    except Exception:  # noqa: BLE001 - Hydra composes it all and raises what is wrong
        return hydra_compose(overrides, with_hydra)
    if with_hydra:
        _record_overrides(cfg, parsed)
    return cfg


def hydra_compose(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """Hydra's composition of the config tree with every override, nothing kept between calls."""
    from hydra import compose as compose_with_hydra
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose_with_hydra(config_name="config", overrides=list(overrides),
                                      return_hydra_config=with_hydra)
    finally:
        GlobalHydra.instance().clear()


def _is_value(override) -> bool:
    """An override of the app's values, which Hydra applies after composing: not a config group's
    choice (which changes what is composed), not a setting of Hydra's."""
    key = override.key_or_group
    return not override.is_hydra_override() and key not in config_groups() and "/" not in key


def _tree_state() -> tuple:
    """Every file of conf/ with its stamp (size, times, inode): a composition kept from before an
    edit is never used after it. A file system without stamps keeps nothing (a fresh object
    each time)."""
    from latentexp.io import file_stamp

    state = []
    for folder, _, files in os.walk(config_dir()):
        for name in files:
            stamp = file_stamp(os.path.join(folder, name))
            state.append((folder, name, tuple(stamp) if stamp else object()))
    return tuple(sorted(state, key=lambda item: item[:2]))


@lru_cache(maxsize=64)
def compositions(shape: tuple[str, ...], with_hydra: bool, tree_state: tuple) -> DictConfig:
    """Hydra's composition of a choice of groups, kept (never handed out: compose copies it)."""
    return hydra_compose(list(shape), with_hydra)


def _record_overrides(cfg: DictConfig, parsed: list) -> None:
    """What Hydra's composition writes into its node from the overrides and the process
    (ConfigLoaderImpl._load_configuration_impl): the job's overrides, the working directory, the
    copied environment."""
    name_the_job(cfg, [o.input_line for o in parsed if not o.is_hydra_override()])
    with open_dict(cfg.hydra):
        cfg.hydra.runtime.cwd = os.getcwd()
        for key in cfg.hydra.job.env_copy:
            cfg.hydra.job.env_set[key] = os.environ[key]


def name_the_job(cfg: DictConfig, job_overrides: list[str]) -> None:
    """Hydra's record of a job's overrides (``hydra.overrides.task`` and the override_dirname made of
    them), as its own composition of those overrides writes it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from latentexp.config.hydra_internals import overrides_dirname

    dirname = cfg.hydra.job.config.override_dirname
    with open_dict(cfg.hydra):
        cfg.hydra.overrides.task = list(job_overrides)
        cfg.hydra.job.override_dirname = overrides_dirname(
            OverridesParser.create().parse_overrides(job_overrides), kv_sep=dirname.kv_sep,
            item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)


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
