"""The one module that reaches into ``hydra._internal``: what latentexp needs of Hydra and Hydra's
public API does not offer. pyproject bounds hydra-core to the minor version these were written
and tested against (tests/test_hydra_internals.py checks each one against the installed Hydra);
a new Hydra minor is a change here, nowhere else.

- ``apply_overrides``: Hydra's own application of ``key=value``, ``+key=value`` and ``~key``
  overrides to a composed config (config.tree composes each choice of groups once per process
  and applies the values to a copy, as Hydra does after it composes).
- ``overrides_dirname``: the ``hydra.job.override_dirname`` Hydra writes for a job's overrides.
- ``run_context``: the config loader and callbacks of Hydra's run mode, for a single run that
  latentexp composed and validated before handing it to Hydra (cli.run_planned).
- ``args_parser``: Hydra's command-line parser, to leave its own flags to it (cli).
- ``basic_sweeper()``: Hydra's grid sweeper class, which the planned sweeper extends and whose
  split of a sweep into jobs latentexp reproduces (sweeps). A function, not a name bound once:
  Hydra's plugin scan executes its plugin modules again (``load_module``), so the class a
  subclass must extend is the one that module holds when the subclass is defined.
"""

from __future__ import annotations

import argparse
from typing import Any

from hydra._internal.callbacks import Callbacks
from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.utils import create_config_search_path, get_args_parser
from omegaconf import DictConfig

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"  # its _target_

__all__ = ["BASIC_SWEEPER", "apply_overrides", "args_parser", "basic_sweeper", "overrides_dirname",
           "run_context"]


def apply_overrides(overrides: list[Any], cfg: DictConfig) -> None:
    """Apply parsed value overrides to ``cfg`` in place, as Hydra's config loader does."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


def overrides_dirname(overrides: list[Any], kv_sep: str, item_sep: str, exclude_keys: list[str]) -> str:
    return get_overrides_dirname(overrides=overrides, kv_sep=kv_sep, item_sep=item_sep,
                                 exclude_keys=exclude_keys)


def run_context(cfg: DictConfig, config_dir: str) -> tuple[Any, Callbacks]:
    """(config loader, callbacks) of Hydra's run mode for ``cfg``, composed from ``config_dir``."""
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(config_dir))
    return loader, Callbacks(cfg)


def args_parser() -> argparse.ArgumentParser:
    return get_args_parser()


def basic_sweeper() -> type:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper
