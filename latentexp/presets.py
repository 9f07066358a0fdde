"""The sweep grids of the experiment presets, expanded as Hydra's basic sweeper expands them."""

from __future__ import annotations

import itertools

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from latentexp.identity import register_resolvers, run_fields

# The paper's sweep presets: (dataset, table) -> preset name.
PAPER_TABLE_PRESETS = {
    "Table 1": "paper_table1_{dataset}",
    "Tables 5-7": "paper_table{appendix}_{dataset}",
    "Table 8": "paper_table8_{dataset}",
    "Table 2": "paper_table2_{dataset}",
}
APPENDIX_TABLES = {"fashion_mnist": 5, "cifar10": 6, "cifar100": 7}


def preset_name(table: str, dataset: str) -> str:
    return PAPER_TABLE_PRESETS[table].format(dataset=dataset, appendix=APPENDIX_TABLES[dataset])


def compose_config(overrides: list[str], with_hydra: bool = False):
    """The config tree composed with ``overrides``, as `latentexp train` would (outside any app)."""
    from latentexp.cli import config_dir

    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose(config_name="config", overrides=overrides, return_hydra_config=with_hydra)
    finally:
        GlobalHydra.instance().clear()


def preset_jobs(preset: str) -> tuple[str, str, list[dict[str, str]]]:
    """The preset's dataset, model, and one dict of swept values per Hydra job."""
    cfg = compose_config([f"experiment={preset}"], with_hydra=True)
    params = cfg.hydra.sweeper.params or {}
    overrides = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    axes = {
        o.key_or_group: list(o.sweep_string_iterator()) if o.is_sweep_override() else [str(o.value())]
        for o in overrides
    }
    jobs = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    return str(cfg.dataset.name), str(cfg.model.name), jobs


def distinct_runs(dataset: str, jobs: list[dict[str, str]]) -> set[tuple]:
    """(loss, effective λ, seed) of each distinct run: every λ = 0 job is one baseline per seed."""
    runs = set()
    for job in jobs:
        fields = run_fields({"dataset": {"name": dataset}, "model": {"name": "-"},
                             "loss": {"name": job["loss"]}, "lambda": float(job["lambda"]),
                             "seed": int(job["seed"])})
        runs.add((fields["loss"], fields["lambda"], fields["seed"]))
    return runs
