"""latentexp/config/hydra_internals.py is the one module that uses hydra._internal: each thing it offers
works on the installed Hydra, whose version pyproject bounds (a Hydra outside the bounds is a
change to that module and to these tests)."""

import re

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from support.helpers import REPO_ROOT

from latentexp.config import hydra_internals
from latentexp.config.tree import config_dir


def test_no_other_module_reaches_into_hydra_internals():
    sources = [*(REPO_ROOT / "latentexp").rglob("*.py"), *(REPO_ROOT / "hydra_plugins").rglob("*.py")]
    reaching = [str(p.relative_to(REPO_ROOT)) for p in sources if "hydra._internal" in p.read_text()]
    assert reaching == ["latentexp/config/hydra_internals.py"]


def test_the_installed_hydra_is_within_the_bounds_pyproject_sets():
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    (low, high) = re.search(r'"hydra-core>=([\d.]+),<([\d.]+)"', pyproject).groups()
    version = tuple(int(part) for part in re.match(r"(\d+)\.(\d+)\.(\d+)", hydra.__version__).groups())
    assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split(".")))


def test_overrides_are_applied_as_hydra_applies_them():
    cfg = OmegaConf.create({"a": {"b": 1}, "d": 4})
    parsed = OverridesParser.create().parse_overrides(["a.b=2", "+c=3", "~d"])
    hydra_internals.apply_overrides(parsed, cfg)
    assert OmegaConf.to_container(cfg) == {"a": {"b": 2}, "c": 3}


def test_the_override_dirname_is_hydras():
    parsed = OverridesParser.create().parse_overrides(["seed=1", "loss=magnet", "output_root=x"])
    assert hydra_internals.overrides_dirname(parsed, "=", ",", ["output_root"]) == "loss=magnet,seed=1"


def test_the_run_context_loads_latentexps_configs_and_the_parser_knows_hydras_flags():
    cfg = OmegaConf.create({"hydra": {"callbacks": {}}})
    loader, callbacks = hydra_internals.run_context(cfg, config_dir())
    assert "latent_boost" in loader.get_group_options("loss")
    assert callable(callbacks.on_run_start)
    parsed = hydra_internals.args_parser().parse_args(["-m", "seed=0,1"])
    assert parsed.multirun and parsed.overrides == ["seed=0,1"]


def test_the_basic_sweeper_splits_a_sweep_into_jobs_and_is_its_target():
    parsed = OverridesParser.create().parse_overrides(["seed=0,1", "lambda=0.5"])
    (batch,) = hydra_internals.basic_sweeper().split_arguments(parsed, max_batch_size=None)
    assert sorted(map(tuple, batch)) == [("seed=0", "lambda=0.5"), ("seed=1", "lambda=0.5")]
    sweeper = hydra_internals.basic_sweeper()
    assert f"{sweeper.__module__}.{sweeper.__qualname__}" == hydra_internals.BASIC_SWEEPER
