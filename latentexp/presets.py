"""The sweep presets of conf/experiment/, expanded as Hydra's basic sweeper expands them, each job
resolved to its run spec."""

from __future__ import annotations

import itertools

from omegaconf import DictConfig, OmegaConf, open_dict

from latentexp.config_tree import compose
from latentexp.spec import RunSpec

# The paper's sweep presets, per table: the preset's name for a dataset.
PAPER_TABLE_PRESETS = {
    "Table 1": "paper_table1_{dataset}",
    "Tables 5-7": "paper_table{appendix}_{dataset}",
    "Table 8": "paper_table8_{dataset}",
    "Table 2": "paper_table2_{dataset}",
}


def preset_name(table: str, dataset: str) -> str:
    from latentexp.report.published import APPENDIX_TABLES

    return PAPER_TABLE_PRESETS[table].format(dataset=dataset, appendix=APPENDIX_TABLES[dataset])


def sweep_axes(cfg: DictConfig) -> dict[str, list]:
    """The swept keys of a composed config (``hydra.sweeper.params``) and their values as Hydra
    parses them (``lambda=0`` is the integer 0), in order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = cfg.hydra.sweeper.params or {}
    overrides = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return {o.key_or_group: list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()]
            for o in overrides}


def preset_configs(preset: str) -> list[DictConfig]:
    """The composed config of each Hydra job of a sweep preset (one job for a preset that does not
    sweep), in the sweeper's order."""
    axes = sweep_axes(compose([f"experiment={preset}"], with_hydra=True))
    group_axes = [key for key in axes if "." not in key and key not in ("lambda", "seed")]
    composed: dict[tuple, DictConfig] = {}
    configs = []
    for values in itertools.product(*axes.values()):
        job = dict(zip(axes, values, strict=True))
        groups = tuple(f"{key}={job[key]}" for key in group_axes)
        if groups not in composed:  # compose once per choice of config groups, then set the values
            composed[groups] = compose([f"experiment={preset}", *groups])
        cfg = composed[groups].copy()
        with open_dict(cfg):
            for key, value in job.items():
                if key not in group_axes:
                    OmegaConf.update(cfg, key, value, merge=False)
        configs.append(cfg)
    return configs


def preset_specs(preset: str) -> list[RunSpec]:
    """The run spec of each Hydra job of a preset (repeats included: every λ = 0 job of a sweep is
    the one baseline run of its seed)."""
    return [RunSpec.from_config(cfg) for cfg in preset_configs(preset)]
