"""The Hydra jobs of a command line or of a sweep preset, expanded as Hydra's basic sweeper expands
them (the preset's ``hydra.sweeper.params``, replaced axis by axis by the command line's sweeps),
each one composed. `latentexp train` checks every job this way before the first one starts."""

from __future__ import annotations

import itertools
import re

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from latentexp.config.trainer_schema import composition_error
from latentexp.config.tree import compose, config_groups, name_the_job
from latentexp.errors import ConfigError
from latentexp.runs.spec import RunSpec

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


def job_configs(overrides: list[str], multirun: bool = True, with_hydra: bool = False) -> list[DictConfig]:
    """The composed config of every job of ``latentexp train [-m] OVERRIDES``, in the sweeper's
    order. ``with_hydra``: each with Hydra's node as the job's own Hydra composition makes it
    (``hydra.overrides.task`` is then the job's overrides as the sweeper names them, the key by
    which latentexp.launch.jobs finds the job again). A Hydra composition error (a key the config lacks,
    a bad override) is a ConfigError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parser = OverridesParser.create()
        arguments = parser.parse_overrides(overrides)
        sweeps = [o.input_line for o in arguments if o.is_sweep_override()]
        if sweeps and not multirun:
            raise ConfigError(f"{sweeps[0]} sweeps several values: add -m to run one job per value.")
        swept_hydra = [o.input_line for o in arguments if o.is_sweep_override() and o.is_hydra_override()]
        if swept_hydra:
            raise ConfigError(f"{swept_hydra[0]} sweeps a setting of Hydra itself, one for the whole sweep: "
                              f"give it one value.")
        params = []
        if multirun:  # a preset's own sweep (hydra.sweeper.params), replaced key by key by the arguments
            fixed = [o.input_line for o in arguments if not o.is_sweep_override()]
            preset = compose(fixed, with_hydra=True).hydra.sweeper.params or {}
            params = parser.parse_overrides([f"{k}={v}" for k, v in preset.items()])
        final = {}
        for override in [*params, *arguments]:  # as Hydra's BasicSweeper: the last word on a key wins
            final[override.get_key_element()] = override
        return _expand(list(final.values()), multirun, with_hydra)
    except (HydraException, OmegaConfBaseException) as err:
        declared = composition_error(err.__cause__ or err)  # a declared setting's own words
        if declared:
            raise ConfigError(declared) from None
        message = " ".join(str(err).split())
        if err.__cause__ is not None:  # OmegaConf's own first line says what is wrong with the value
            message = f"{message}: {str(err.__cause__).splitlines()[0]}."
        unknown = re.match(r"Could not override '([^']+)'", message)
        if unknown:
            message = (f"the config has no key {unknown.group(1)!r}: check its spelling (`latentexp train "
                       f"--cfg job` prints the config, `--help` its groups).")
        raise ConfigError(message) from None


def _expand(overrides: list, multirun: bool, with_hydra: bool) -> list[DictConfig]:
    """One composed config per job: once per choice of config groups, then the swept values set."""
    groups = config_groups()
    hydra_fixed = [o.input_line for o in overrides if o.is_hydra_override()]
    if with_hydra and multirun:
        hydra_fixed.append("hydra.mode=MULTIRUN")  # as Hydra's multirun composes each job
    task = [o for o in overrides if not o.is_hydra_override()]
    fixed = [o.input_line for o in task if not o.is_sweep_override()]
    swept = [o for o in task if o.is_sweep_override()]
    is_group = [o.key_or_group in groups or "/" in o.key_or_group for o in swept]
    axes = [_values(o, groups) for o in swept]
    names = _job_overrides(task, multirun)
    composed: dict[tuple, DictConfig] = {}
    configs = []
    for values, job_overrides in zip(itertools.product(*axes), names, strict=True):
        choice = tuple(f"{o.get_key_element()}={v}"
                       for o, v, group in zip(swept, values, is_group, strict=True) if group)
        if choice not in composed:
            composed[choice] = compose([*hydra_fixed, *fixed, *choice], with_hydra=with_hydra)
        cfg = composed[choice].copy()
        with open_dict(cfg):
            for o, value, group in zip(swept, values, is_group, strict=True):
                if not group:
                    OmegaConf.update(cfg, o.key_or_group, value, merge=False)
            if with_hydra:
                name_the_job(cfg, job_overrides)  # its own overrides, the swept values included
        configs.append(cfg)
    return configs


def _job_overrides(task: list, multirun: bool) -> list[list[str]]:
    """Each job's overrides as Hydra hands them to the launcher: its sweeper's split for a sweep,
    the command line's own words for a single run."""
    if not multirun:
        return [[o.input_line for o in task]]
    from latentexp.config.hydra_internals import basic_sweeper

    (batch,) = basic_sweeper().split_arguments(task, max_batch_size=None)
    return batch


def _values(override, groups: dict[str, list[str]]) -> list:
    """The values of one sweep as Hydra parses them (``lambda=0,0.5`` is [0, 0.5])."""
    from hydra.core.override_parser.types import ValueType

    if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
        return override.value().filter(groups.get(override.key_or_group, []))
    return list(override.sweep_iterator())


def preset_configs(preset: str) -> list[DictConfig]:
    """The composed config of each Hydra job of a preset (one job for a preset that does not sweep)."""
    return job_configs([f"experiment={preset}"])


def preset_specs(preset: str) -> list[RunSpec]:
    """The run spec of each Hydra job of a preset (repeats included: every λ = 0 job of a sweep is
    the one baseline run of its seed), without the data's fingerprint: for counting and listing
    runs, on machines that may not hold the data."""
    return [RunSpec.from_config(cfg, resolve_data=False) for cfg in preset_configs(preset)]
