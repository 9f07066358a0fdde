"""A job of `latentexp train` is composed once, validated once and specified once, in this process
and for the local launcher's workers: counted here on real commands."""

import collections

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from support.helpers import cli, result_files

from latentexp.config import tree as config_tree
from latentexp.launch import jobs, validation
from latentexp.runs.spec import RunSpec

TINY = ["model=ffnn", "trainer.max_epochs=1", "dataset.limit_train=300", "dataset.limit_test=100",
        "trainer.batch_size=64", "device=cpu"]


@pytest.fixture
def counted(monkeypatch, tmp_path, data_root):
    """How often the command composed a config (Hydra's loader: jobs and the sweep itself), composed
    a sweep's job again (load_sweep_config), validated a job and built a spec; counted as a new
    process counts them (no composition kept from an earlier test in this one)."""
    config_tree.compositions.cache_clear()
    monkeypatch.setenv("LATENTEXP_DATA", str(data_root))
    monkeypatch.chdir(tmp_path)
    calls = collections.Counter()

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration",
                        counting("compose", ConfigLoaderImpl.load_configuration))
    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config",
                        counting("compose job again", ConfigLoaderImpl.load_sweep_config))
    monkeypatch.setattr(validation, "validate_config", counting("validate", validation.validate_config))
    from_config = RunSpec.from_config.__func__
    monkeypatch.setattr(RunSpec, "from_config",
                        classmethod(lambda cls, *a, **k: counting("spec", from_config)(cls, *a, **k)))
    return calls


def test_a_single_run_is_composed_validated_and_specified_once(counted, tmp_path):
    assert cli("train", "loss=magnet", "lambda=0.5", *TINY) == 0
    assert dict(counted) == {"compose": 1, "validate": 1, "spec": 1}
    (result,) = result_files(tmp_path / "outputs")
    assert result.parent.name.startswith("fashion_mnist-ffnn-magnet-lam0.5-seed0-")
    assert (result.parent / ".hydra" / "overrides.yaml").is_file()  # Hydra's record of the job, as before


def test_each_job_of_a_sweep_is_composed_validated_and_specified_once(counted, tmp_path):
    # 2 losses x 2 seeds: 4 jobs, composed once per loss (the seeds are set on the composed config),
    # plus the sweep's own config three times, none a job's: latentexp reads its preset's params,
    # Hydra composes it to learn the mode, then for the sweeper. Hydra's own basic sweeper would
    # compose each job twice more (to check the batch, then to launch it).
    sweep = ["-m", "loss=ce,magnet", "seed=0,1", "lambda=0.5", "hydra.launcher.n_jobs=1"]
    assert cli("train", *sweep, *TINY) == 0
    assert dict(counted) == {"compose": 2 + 3, "validate": 4, "spec": 4}
    assert len(result_files(tmp_path / "outputs")) == 4


def test_the_local_launchers_workers_take_the_planned_jobs(counted, tmp_path):
    """With two jobs at once each job runs in a worker process, which receives the job resolved
    (nothing in this process composes a job again), and trains the planned run."""
    assert cli("train", "-m", "loss=ce,magnet", "lambda=0.5", "hydra.launcher.n_jobs=2", *TINY) == 0
    assert counted["compose job again"] == 0 and counted["validate"] == counted["spec"] == 2
    planned = {job.spec.name for job in jobs.state().values()}
    assert {p.parent.name for p in result_files(tmp_path / "outputs")} == planned


def test_a_job_nothing_planned_is_resolved_once_and_its_refusal_kept(tmp_path):
    from latentexp.config.tree import compose

    jobs.plan([])
    cfg = compose(["lambda=0.5", f"output_root={tmp_path}"], with_hydra=True)
    first = jobs.find(jobs.overrides_of(cfg), cfg)
    assert jobs.find(jobs.overrides_of(cfg), cfg) is first  # asked again: the same job, not resolved again
    bad = compose(["lambda=1.5"], with_hydra=True)
    for _ in range(2):
        with pytest.raises(Exception, match=r"lambda=1\.5 is invalid"):
            jobs.find(jobs.overrides_of(bad), bad)
    assert jobs.planned(jobs.overrides_of(bad)) is None
    jobs.plan([])
    assert jobs.planned(jobs.overrides_of(cfg)) is None  # a new command forgets the last one's jobs


def test_jobs_sharing_an_optimizer_build_it_once_and_a_refused_one_is_still_refused(monkeypatch):
    """The trial build of the optimizer and its schedule is kept per distinct setting, accepted only."""
    from latentexp.config import tree as config_tree
    from latentexp.config.tree import compose
    from latentexp.errors import ConfigError

    built = collections.Counter()
    instantiate = config_tree.instantiate
    def counting(node, *args, **kwargs):
        built[str(node.get("_target_"))] += 1
        return instantiate(node, *args, **kwargs)

    monkeypatch.setattr(config_tree, "instantiate", counting)
    monkeypatch.setattr(validation, "_TRIED_OPTIMIZERS", set())
    for seed in (0, 1, 2):
        validation.validate_config(compose([f"seed={seed}", "optimizer.lr=0.002"]))
    assert built["torch.optim.Adam"] == 1
    validation.validate_config(compose(["optimizer.lr=0.003"]))
    assert built["torch.optim.Adam"] == 2
    with pytest.raises(ConfigError, match="refuses its settings"):
        validation.validate_config(compose(["optimizer.lr=0.003", "+optimizer.betas=[0.9,2.0]"]))
    with pytest.raises(ConfigError, match="refuses its settings"):  # refused again: never kept
        validation.validate_config(compose(["optimizer.lr=0.003", "+optimizer.betas=[0.9,2.0]"]))
