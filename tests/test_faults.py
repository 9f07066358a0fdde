"""Never lose a run: kills in the middle of a write, NaN runs inside a sweep, `status`, and
sweeps through the joblib and submitit launchers. Real `latentexp` subprocesses on tiny data."""

import json
import os

import pytest
from support.helpers import cli, latentexp, result_files
from support.runs import run_config, write_run

pytestmark = pytest.mark.slow

RUN = ["train", "loss=latent_boost", "trainer.max_epochs=3", "dataset.limit_train=600",
       "trainer.batch_size=32", "device=cpu"]
COMPARED = ("test_accuracy", "test_micro_f1", "val_accuracy_best", "best_epoch", "epochs_run",
            "silhouette_test", "pca_components")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_root):
    """The uninterrupted run, in this process (one thread, as the killed runs): the process is not
    what it shows."""
    cwd, before = tmp_path_factory.mktemp("reference"), os.getcwd()
    saved = os.environ.get("LATENTEXP_DATA")
    os.environ["LATENTEXP_DATA"] = str(data_root)
    os.chdir(cwd)
    try:
        assert cli(*RUN) == 0
    finally:
        os.chdir(before)
        if saved is None:
            os.environ.pop("LATENTEXP_DATA")
        else:
            os.environ["LATENTEXP_DATA"] = saved
    (result,) = result_files(cwd / "outputs")
    return json.loads(result.read_text())


@pytest.mark.parametrize("fault", ["checkpoint.pt:2", "history.csv:3", "test_latents.npz:1", "result.json:1"])
def test_a_kill_in_the_middle_of_a_write_resumes_to_the_same_result(here, cli_env, reference, fault):
    # The kill needs a process of its own (SIGKILL mid-write: nothing of it cleans up); its resume
    # does not, and runs here.
    killed = latentexp(RUN, {**cli_env, "LATENTEXP_FAULT": fault, "OMP_NUM_THREADS": "1"}, here)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])  # SIGKILLed mid-write
    (run_dir,) = (here / "outputs" / "runs").iterdir()
    assert list(run_dir.glob(".*.tmp")), "the fault left no half-written temporary file"
    assert not (run_dir / "result.json").exists()
    assert cli(*RUN) == 0
    assert not list(run_dir.glob(".*.tmp"))  # cleaned up; every real file is whole
    result = json.loads((run_dir / "result.json").read_text())
    assert run_dir.name == reference["spec"]["name"]
    for key in COMPARED:
        assert result[key] == reference[key], key


def test_a_nan_run_fails_alone_and_the_sweep_goes_on(here, capfd):
    sweep = ["train", "-m", "optimizer.lr=1e-3,1e12", "loss=magnet", "lambda=0.5", "trainer.max_epochs=2",
             "hydra.launcher.n_jobs=1",
             "dataset.limit_train=300", "device=cpu"]
    assert cli(*sweep) == 0, capfd.readouterr().err
    results = [json.loads(r.read_text()) for r in result_files(here / "outputs")]
    assert sorted(r["status"] for r in results) == ["failed", "finished"]
    failed = next(r for r in results if r["status"] == "failed")
    assert "became nan" in failed["reason"] or "became inf" in failed["reason"]
    capfd.readouterr()
    assert cli("status", "outputs") == 0
    status = capfd.readouterr().out
    assert "2 runs: 1 failed, 1 finished" in status, status
    assert status.splitlines()[0].startswith("failed")  # failures first
    assert cli("report", "outputs", "--no-figures") == 0
    report = capfd.readouterr().out
    assert "0/1 (1 failed)" in report, report
    assert cli(*sweep) == 0  # a failed run is recorded, not retried blindly
    again = capfd.readouterr()
    assert (again.out + again.err).count("not training again") == 2


def test_status_lists_resumable_and_unstarted_runs(tmp_path, cli_env):
    runs = tmp_path / "outputs" / "runs"
    for name in ("a", "b"):
        started = write_run(tmp_path / "outputs", run_config("ce", 0.0, ord(name)), status="started")
        started.rename(runs / name)
    (runs / "b" / "checkpoint.pt").write_text("x")
    (runs / "b" / "history.csv").write_text("epoch\n1\n2\n")
    (tmp_path / "outputs" / "other").mkdir()
    (tmp_path / "outputs" / "other" / "config.yaml").write_text("lr: 0.1\n")  # not a latentexp run
    out = latentexp(["status", "outputs"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "resumable (after epoch 2)" in out.stdout and "started (no epoch finished)" in out.stdout
    assert "2 runs: 1 resumable, 1 started" in out.stdout, out.stdout


@pytest.mark.parametrize("launcher", [
    ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "hydra.launcher.cpus_per_task=1"],
])
def test_a_two_job_sweep_through_a_parallel_launcher(tmp_path, cli_env, launcher):
    # Two jobs side by side, one run: the λ = 0 jobs of both losses are the one baseline, which only
    # one of the parallel jobs trains (run.lock); the other leaves it to that job or finds it finished.
    sweep = ["train", "-m", *launcher, "loss=magnet,latent_boost", "lambda=0", "trainer.max_epochs=1",
             "dataset.limit_train=300", "dataset.limit_test=200", "device=cpu"]
    out = latentexp(sweep, cli_env, tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    results = [json.loads(r.read_text()) for r in result_files(tmp_path / "outputs")]
    assert [r["spec"]["loss"] for r in results] == ["ce"]
    assert all(r["status"] == "finished" and r["epochs_run"] == 1 for r in results)
    (history,) = (tmp_path / "outputs").glob("runs/*/history.csv")
    assert len(history.read_text().splitlines()) == 2  # trained once: one epoch, never twice
