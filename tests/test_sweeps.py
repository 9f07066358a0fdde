"""Paper sweep presets, shared baseline runs, `--dry-run`, and a real tiny multirun -> report -> analyze."""

import json
import re
from pathlib import Path

import pytest
from support.helpers import cli

from latentexp.launch.sweeps import preset_specs
from latentexp.report.published import APPENDIX_TABLES as APPENDIX
from latentexp.report.published import PAPER_MODELS as PAPER_SETUPS
from latentexp.report.published import published_values


def published_cells(table: int, dataset: str, losses=None):
    frame = published_values()
    frame = frame[(frame["table"] == table) & (frame["dataset"] == dataset)]
    if losses:
        frame = frame[frame["loss"].isin(losses)]
    return {(row["loss"], float(row["lambda"])) for _, row in frame.iterrows()}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(PAPER_SETUPS))
def test_paper_presets_sweep_exactly_the_published_grids(dataset):
    expected = {
        f"paper_table1_{dataset}": published_cells(1, dataset),
        f"paper_table{APPENDIX[dataset]}_{dataset}": published_cells(APPENDIX[dataset], dataset),
        f"paper_table8_{dataset}": published_cells(8, dataset),
        # Table 2: each loss's best λ from the full grids of Magnet (appendix) and Latent Boost (Table 8).
        f"paper_table2_{dataset}": published_cells(APPENDIX[dataset], dataset, ["ce", "magnet"])
        | published_cells(8, dataset),
    }
    for preset, cells in expected.items():
        specs = preset_specs(preset)
        assert {(s.dataset, s.model) for s in specs} == {(dataset, PAPER_SETUPS[dataset])}, preset
        assert {(s.loss, s.lam) for s in specs} == cells, preset  # every λ = 0 job is the baseline
        assert {s.seed for s in specs} == {0, 1, 2, 3, 4}, preset


def test_an_auxiliary_loss_at_lambda_zero_trains_as_the_baseline(compose_cfg):
    from latentexp.launch.training import run

    tiny = ["trainer.max_epochs=1", "dataset.limit_train=200"]
    result = run(compose_cfg("loss=center", "lambda=0", *tiny))
    assert result["spec"]["config"]["loss"]["name"] == "ce" and result["spec"]["loss"] == "ce"
    again = run(compose_cfg("loss=latent_boost", "lambda=0", *tiny))  # the same run: not trained again
    assert again == result


# ---------------------------------------------------------------------- the console script


def listed_runs(stdout: str):
    return re.findall(r"^#(\d+)\s+(\S+)\s+(.+)$", stdout, flags=re.M)


@pytest.mark.slow
def test_dry_run_lists_a_preset_run_for_run_and_writes_nothing(here, capsys):
    assert cli("train", "-m", "experiment=paper_table1_fashion_mnist", "--dry-run") == 0
    out = capsys.readouterr()
    jobs = listed_runs(out.out)
    assert len(jobs) == 4 * 4 * 5  # Hydra's Cartesian grid: 4 losses × 4 λ × 5 seeds
    names = {name for _, name, state in jobs if state == "new"}
    assert len(names) == 5 * (1 + 4 * 3)  # one baseline per seed + 4 losses × 3 λ, each once
    parsed = {(n.split("-")[2], float(n.split("-")[3][3:]), int(n.split("-")[4][4:])) for n in names}
    cells, seeds = {(loss, lam) for loss, lam, _ in parsed}, {seed for *_, seed in parsed}
    assert cells == published_cells(1, "fashion_mnist") and seeds == set(range(5))
    assert "80 jobs, 65 distinct runs: 0 finished, 0 failed, 0 to resume, 65 new." in out.out
    assert list(here.iterdir()) == []  # no outputs/, no Hydra files


@pytest.mark.slow
def test_real_tiny_multirun_then_report_and_analyze_and_rerun_trains_nothing(here, monkeypatch, capfd):
    """2 λ × 2 seeds × 1 epoch on a slice of the real Fashion-MNIST (Debian package), via the preset.
    In this process: the console script in a subprocess is tests/test_cli.py's."""
    monkeypatch.delenv("LATENTEXP_DATA")  # the real data
    # One job at a time, in the sweep's process: jobs side by side are tests/test_launcher.py's.
    sweep = ["train", "-m", "experiment=example_fashion_mnist", "loss=magnet", "lambda=0,0.5", "seed=0,1",
             "hydra.launcher.n_jobs=1",
             "trainer.max_epochs=1", "dataset.limit_train=1000", "dataset.limit_test=500", "device=cpu"]
    assert cli(*sweep) == 0, capfd.readouterr().err
    results = sorted((here / "outputs").glob("runs/*/result.json"))
    assert len(results) == 4
    losses = sorted(json.loads(r.read_text())["spec"]["loss"] for r in results)
    assert losses == ["ce", "ce", "magnet", "magnet"]
    stamps = {r: r.stat().st_mtime_ns for r in results}

    capfd.readouterr()
    assert cli("report", "outputs", "--out", "report") == 0
    report = capfd.readouterr().out
    assert re.search(r"\| Baseline \| 0 \| \d+\.\d\d ± \d+\.\d\d \| .* \| 2 \|", report), report
    assert re.search(r"\| Magnet \| 0\.5 \| \d+\.\d\d ± \d+\.\d\d \|", report), report
    figures = {p.name for p in (here / "report" / "figures").iterdir()}
    for stem in ("accuracy_vs_lambda", "training_curves", "tsne"):
        assert {f"{stem}_fashion_mnist-cnn.png", f"{stem}_fashion_mnist-cnn.pdf"} <= figures, stem
    assert {"report.md", "report.tex", "runs.csv", "cells.csv", "best.csv"} <= {
        p.name for p in (here / "report").iterdir()}

    run_dir = results[0].parent
    assert cli("analyze", str(run_dir), "--no-tsne") == 0 and "kmeans" in capfd.readouterr().out
    assert cli("report", "outputs", "--no-figures") == 0 and "Cluster quality" in capfd.readouterr().out

    assert cli(*sweep) == 0
    said = capfd.readouterr()
    assert (said.out + said.err).count("not training again") == 4
    assert {r: r.stat().st_mtime_ns for r in results} == stamps
    assert cli(*sweep, "--dry-run") == 0
    dry = capfd.readouterr().out
    assert "4 distinct runs: 4 finished" in dry, dry


# Another job: takes the run's lock and holds it. lock.py is loaded on its own (no torch import),
# so that several of these start in a blink.
HOLD_LOCK = """
import importlib.util, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("runlock", sys.argv[3])
lock_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock_module)
lock = lock_module.RunLock(Path(sys.argv[1]) / "run.lock")
print(lock.acquire(attempts=1), flush=True)
time.sleep(float(sys.argv[2]))
"""
LOCK_PY = str(Path(__file__).resolve().parents[1] / "latentexp" / "runs" / "runlock.py")


def test_a_run_locked_by_a_live_job_is_left_to_it_and_taken_when_it_dies(tmp_path, compose_cfg):
    import subprocess
    import sys

    from latentexp.launch.training import run
    from latentexp.runs.spec import RunSpec

    cfg = compose_cfg("loss=magnet", "lambda=0", "trainer.max_epochs=1", "dataset.limit_train=200")
    files = RunSpec.from_config(cfg).files
    run_dir = files.path
    run_dir.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir), "600", LOCK_PY],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "True"
        assert run(cfg)["status"] == "running elsewhere" and not (run_dir / "result.json").exists()
        assert files.state().startswith("running") and files.holder()["pid"] == other.pid
    finally:
        other.kill()  # SIGKILL: no clean-up code runs, the kernel drops the lock
        other.wait()
    assert files.holder() is None and files.state() == "new"  # the skipped job wrote nothing
    assert run(cfg)["status"] == "finished" and files.holder() is None


@pytest.mark.slow
def test_only_one_of_many_simultaneous_jobs_gets_the_lock(tmp_path):
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path), "5", LOCK_PY],
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    answers = [p.stdout.readline().strip() for p in procs]
    for p in procs:
        p.wait()
    assert sorted(answers) == ["False"] * 5 + ["True"]


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["experiment=example_fashion_mnist"],
    ["experiment=example_fashion_mnist", "seed=3", "loss=magnet,ce", "trainer.max_epochs=2"],
    ["loss=magnet,latent_boost", "lambda=0,0.5", "seed=range(2)", "optimizer=adam,sgd"],
])
def test_the_jobs_are_the_ones_hydras_basic_sweeper_launches(overrides):
    """`latentexp train` checks (and --dry-run lists) the jobs it expands itself: they must be
    Hydra's, job by job and in order (a preset's sweep params replaced key by key by the command)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from latentexp.config.tree import hydra_compose
    from latentexp.launch.sweeps import job_configs
    from latentexp.runs.spec import plain_config

    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    params = hydra_compose(fixed, with_hydra=True).hydra.sweeper.params or {}
    (jobs,) = BasicSweeper.split_arguments(parser.parse_overrides(
        [*(f"{k}={v}" for k, v in params.items()), *overrides]), None)
    hydras = [plain_config(hydra_compose(job)) for job in jobs]
    assert [plain_config(c) for c in job_configs(overrides)] == hydras


@pytest.mark.parametrize("overrides", [
    ["experiment=example_fashion_mnist", "seed=3", "loss=magnet,ce", "lambda=0,0.5"],
    ["loss=magnet,latent_boost", "seed=range(2)", "optimizer=adam,sgd", "hydra.launcher.n_jobs=1"],
])
def test_each_planned_job_is_the_config_hydras_launcher_would_compose(overrides):
    """The launcher runs the configs `latentexp train` composed instead of composing them again:
    each must be Hydra's own composition of the job, its Hydra node included (run directory,
    overrides, mode, choices), found by the overrides Hydra's sweeper hands the launcher."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra._internal.utils import create_config_search_path
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from latentexp.cli import PLANNED_SWEEPER
    from latentexp.config.tree import config_dir
    from latentexp.launch import jobs
    from latentexp.launch.sweeps import job_configs
    from latentexp.runs.spec import flatten

    args = [*overrides, PLANNED_SWEEPER]
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(config_dir()))
    master = loader.load_configuration("config", [*args, "hydra.mode=MULTIRUN"], run_mode=RunMode.MULTIRUN)
    params = [f"{k}={v}" for k, v in (master.hydra.sweeper.params or {}).items()]
    (batch,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(
        [*params, *master.hydra.overrides.task]), None)
    planned = job_configs(args, multirun=True, with_hydra=True)
    assert [jobs.overrides_of(cfg) for cfg in planned] == [tuple(job) for job in batch]
    for cfg, job in zip(planned, batch, strict=True):
        theirs = loader.load_sweep_config(master, job)
        assert flatten(OmegaConf.to_container(cfg)) == flatten(OmegaConf.to_container(theirs))


def test_a_dry_run_estimates_the_time_from_the_finished_runs_beside_it(here, capsys):
    from support.runs import finished

    for seed in (0, 1):  # 40 epochs of 2.0 s each: 80 s a run
        finished(here / "outputs", "ce", 0.0, seed, 88.0, 88.0)
    assert cli("train", "-m", "loss=magnet", "lambda=0.5", "seed=0,1,2", "hydra.launcher.n_jobs=3",
               "--dry-run") == 0
    out = capsys.readouterr().out
    assert "time: about 4 min of training, 1 min with 3 job(s) at once" in out, out
    assert "3 run(s) of cnn on fashion_mnist at the mean of the 2 finished under outputs: 1 min each" in out
    assert cli("train", "-m", "model=vgg16", "dataset=cifar10", "seed=0,1", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "time: no estimate" in out and "`latentexp bench --models vgg16`" in out
