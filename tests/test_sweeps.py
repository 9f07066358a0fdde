"""Paper sweep presets, shared baseline runs, `--dry-run`, and a real tiny multirun -> report -> analyze."""

import json
import re
from pathlib import Path

import pytest
from test_cli import latentexp

from latentexp.identity import run_name
from latentexp.presets import distinct_runs, preset_jobs
from latentexp.report.published import published_values

PAPER_SETUPS = {"fashion_mnist": "cnn", "cifar10": "vgg16", "cifar100": "resnet50"}
APPENDIX = {"fashion_mnist": 5, "cifar10": 6, "cifar100": 7}


def canonical_cells(dataset: str, jobs):
    """{(loss, λ)} after mapping every λ = 0 job onto the baseline, and the seeds."""
    runs = distinct_runs(dataset, jobs)
    return {(loss, lam) for loss, lam, _ in runs}, {seed for *_, seed in runs}


def published_cells(table: int, dataset: str, losses=None):
    frame = published_values()
    frame = frame[(frame["table"] == table) & (frame["dataset"] == dataset)]
    if losses:
        frame = frame[frame["loss"].isin(losses)]
    return {(row["loss"], float(row["lambda"])) for _, row in frame.iterrows()}


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
        got_dataset, got_model, jobs = preset_jobs(preset)
        assert (got_dataset, got_model) == (dataset, PAPER_SETUPS[dataset]), preset
        got_cells, seeds = canonical_cells(dataset, jobs)
        assert got_cells == cells, preset
        assert seeds == {0, 1, 2, 3, 4}, preset


def test_every_lambda_zero_job_is_one_baseline_run_per_seed():
    base = {"dataset": {"name": "fashion_mnist"}, "model": {"name": "cnn"}, "seed": 3, "trainer": {"x": 1}}
    names = {run_name({**base, "loss": {"name": loss, "alpha": 1.0}, "lambda": 0.0})
             for loss in ("magnet", "latent_boost", "contrastive", "center")}
    names.add(run_name({**base, "loss": {"name": "ce"}, "lambda": 0.75}))  # cross-entropy ignores λ
    assert len(names) == 1 and names.pop().startswith("fashion_mnist-cnn-ce-lam0-seed3-")
    # An unknown name (another version's loss) is never folded into the baseline, even at λ = 0.
    assert "-focal-lam0-" in run_name({**base, "loss": {"name": "focal"}, "lambda": 0})
    magnet = run_name({**base, "loss": {"name": "magnet"}, "lambda": 0.5})
    assert magnet.startswith("fashion_mnist-cnn-magnet-lam0.5-seed3-")
    # A head-replacing loss ignores the trainer's λ: no λ in its name, one run for every λ ...
    arcface = {run_name({**base, "loss": {"name": "arcface"}, "lambda": lam}) for lam in (0.25, 0.5)}
    assert len(arcface) == 1 and "-lam" not in arcface.pop()
    # ... unless its own parameter carries λ (COREL's lam).
    corel = {run_name({**base, "loss": {"name": "corel_cosine", "lam": lam}, "lambda": lam})
             for lam in (0.3, 0.6)}
    assert len(corel) == 2 and all("-corel_cosine-lam" in name for name in corel)


def test_an_auxiliary_loss_at_lambda_zero_trains_as_the_baseline(compose_cfg):
    from latentexp.train import run

    tiny = ["trainer.max_epochs=1", "dataset.limit_train=200"]
    result = run(compose_cfg("loss=center", "lambda=0", *tiny))
    assert result["config"]["loss"] == {"name": "ce"} and result["run"]["loss"] == "ce"
    again = run(compose_cfg("loss=latent_boost", "lambda=0", *tiny))  # the same run: not trained again
    assert again == result


# ---------------------------------------------------------------------- the console script


def listed_runs(stdout: str):
    return re.findall(r"^#(\d+)\s+(\S+)\s+(.+)$", stdout, flags=re.M)


@pytest.mark.slow
def test_dry_run_lists_a_preset_run_for_run_and_writes_nothing(tmp_path, cli_env):
    out = latentexp(["train", "-m", "experiment=paper_table1_fashion_mnist", "--dry-run"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    jobs = listed_runs(out.stdout)
    assert len(jobs) == 4 * 4 * 5  # Hydra's Cartesian grid: 4 losses × 4 λ × 5 seeds
    names = {name for _, name, state in jobs if state == "new"}
    assert len(names) == 5 * (1 + 4 * 3)  # one baseline per seed + 4 losses × 3 λ, each once
    parsed = {(n.split("-")[2], float(n.split("-")[3][3:]), int(n.split("-")[4][4:])) for n in names}
    cells, seeds = {(loss, lam) for loss, lam, _ in parsed}, {seed for *_, seed in parsed}
    assert cells == published_cells(1, "fashion_mnist") and seeds == set(range(5))
    assert "80 jobs, 65 distinct runs: 0 finished, 0 failed, 0 to resume, 65 new." in out.stdout
    assert list(tmp_path.iterdir()) == []  # no outputs/, no Hydra files


@pytest.mark.slow
def test_real_tiny_multirun_then_report_and_analyze_and_rerun_trains_nothing(tmp_path, cli_env):
    """2 λ × 2 seeds × 1 epoch on a slice of the real Fashion-MNIST (Debian package), via the preset."""
    env = {k: v for k, v in cli_env.items() if k != "LATENTEXP_DATA"}  # the real data
    sweep = ["train", "-m", "experiment=example_fashion_mnist", "loss=magnet", "lambda=0,0.5", "seed=0,1",
             "trainer.max_epochs=1", "dataset.limit_train=1000", "dataset.limit_test=500", "device=cpu"]
    out = latentexp(sweep, env, tmp_path)
    assert out.returncode == 0, out.stderr
    results = sorted((tmp_path / "outputs").glob("runs/*/result.json"))
    assert len(results) == 4
    losses = sorted(json.loads(r.read_text())["run"]["loss"] for r in results)
    assert losses == ["ce", "ce", "magnet", "magnet"]
    stamps = {r: r.stat().st_mtime_ns for r in results}

    report = latentexp(["report", "outputs", "--out", "report"], env, tmp_path)
    assert report.returncode == 0, report.stderr
    assert re.search(r"\| Baseline \| 0 \| \d+\.\d\d ± \d+\.\d\d \| .* \| 2 \|", report.stdout), report.stdout
    assert re.search(r"\| Magnet \| 0\.5 \| \d+\.\d\d ± \d+\.\d\d \|", report.stdout), report.stdout
    figures = {p.name for p in (tmp_path / "report" / "figures").iterdir()}
    for stem in ("accuracy_vs_lambda", "training_curves", "tsne"):
        assert {f"{stem}_fashion_mnist-cnn.png", f"{stem}_fashion_mnist-cnn.pdf"} <= figures, stem
    assert {"report.md", "report.tex", "runs.csv", "cells.csv", "best.csv"} <= {
        p.name for p in (tmp_path / "report").iterdir()}

    run_dir = results[0].parent
    analysis = latentexp(["analyze", str(run_dir), "--no-tsne"], env, tmp_path)
    assert analysis.returncode == 0 and "kmeans" in analysis.stdout, analysis.stderr
    assert "Cluster quality" in latentexp(["report", "outputs", "--no-figures"], env, tmp_path).stdout

    again = latentexp(sweep, env, tmp_path)
    assert again.returncode == 0 and again.stderr.count("not training again") + \
        again.stdout.count("not training again") == 4
    assert {r: r.stat().st_mtime_ns for r in results} == stamps
    dry = latentexp([*sweep, "--dry-run"], env, tmp_path)
    assert "4 distinct runs: 4 finished" in dry.stdout, dry.stdout


# Another job: takes the run's lock and holds it. lock.py is loaded on its own (no torch import),
# so that several of these start in a blink.
HOLD_LOCK = """
import importlib.util, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("lock", sys.argv[3])
lock_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock_module)
lock = lock_module.RunLock(Path(sys.argv[1]))
print(lock.acquire(attempts=1), flush=True)
time.sleep(float(sys.argv[2]))
"""
LOCK_PY = str(Path(__file__).resolve().parents[1] / "latentexp" / "train" / "lock.py")


def test_a_run_locked_by_a_live_job_is_left_to_it_and_taken_when_it_dies(tmp_path, compose_cfg):
    import subprocess
    import sys

    from latentexp.train import run
    from latentexp.train.lock import holder
    from latentexp.train.run import default_run_dir, run_state

    cfg = compose_cfg("loss=magnet", "lambda=0", "trainer.max_epochs=1", "dataset.limit_train=200")
    run_dir = default_run_dir(cfg)
    run_dir.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir), "600", LOCK_PY],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "True"
        assert run(cfg)["status"] == "running elsewhere" and not (run_dir / "result.json").exists()
        assert run_state(run_dir).startswith("running") and holder(run_dir)["pid"] == other.pid
    finally:
        other.kill()  # SIGKILL: no clean-up code runs, the kernel drops the lock
        other.wait()
    assert holder(run_dir) is None and run_state(run_dir) == "new"  # the skipped job wrote nothing
    assert run(cfg)["status"] == "finished" and holder(run_dir) is None


def test_only_one_of_many_simultaneous_jobs_gets_the_lock(tmp_path):
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path), "5", LOCK_PY],
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    answers = [p.stdout.readline().strip() for p in procs]
    for p in procs:
        p.wait()
    assert sorted(answers) == ["False"] * 5 + ["True"]
