"""Sweeps through a real SLURM scheduler (`scripts/slurm_local.sh start`: a one-node cluster on
this machine; `.ci/run` starts one, so these run in CI): one array job per sweep, the same results
as local runs, and a task that is requeued, cancelled or out of time resumes from its checkpoint
to the result of an uninterrupted run. Each sweep is a subprocess that blocks until its jobs end,
as a researcher's command does."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.helpers import cli, computing_on, result_files

from latentexp.launch.training import run

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# A run long enough to be interrupted after its first epochs (100 epochs of 540 images: seconds
# on one thread), with no early stop to end it sooner.
LONG_RUN = ("seed=0", "model=cnn", "trainer.max_epochs=100", "trainer.early_stopping_patience=null",
            "trainer.batch_size=60")
QUICK = ("model=ffnn", "trainer.max_epochs=2", "trainer.batch_size=60")
SLURM = ("hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=5")


def sweep(root: Path, env: dict, *overrides: str, launcher=SLURM) -> subprocess.Popen:
    """`latentexp train -m` into ``root``, started (not waited for)."""
    args = [sys.executable, "-m", "latentexp.cli", "train", "-m", *launcher, f"output_root={root}",
            "device=cpu", "dataset.download=false", *overrides]
    return subprocess.Popen(args, env=env, cwd=root.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(process: subprocess.Popen, root: Path, timeout: float = 240) -> tuple[int, str]:
    """Wait for a sweep, releasing its requeued tasks as they come: SLURM holds a requeued job
    for two minutes before it may start again (its BeginTime), which a test need not wait out."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, f"the sweep into {root} did not end in {timeout} s"
        for job in job_ids(root):
            state = squeue(job)
            if state.startswith("PENDING") and "BeginTime" in state:
                subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=False,
                               capture_output=True)
        time.sleep(1)
    return process.returncode, process.stdout.read()


def job_ids(root: Path) -> list[str]:
    """The SLURM ids of the sweep's tasks (submitit's folders: `123` for a lone job, `123_0`, `123_1`
    for an array's tasks)."""
    folders = [p.name for p in (root / ".submitit").glob("*") if p.is_dir()]
    tasks = [f for f in folders if "_" in f]
    return sorted(tasks) if tasks else sorted(folders)


def squeue(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r"], capture_output=True, text=True)
    return out.stdout.strip()


def sacct_states(job: str, timeout: float = 20) -> list[str]:
    """Every state the job went through (`-D`: its requeued runs too), once the accounting database
    has its end (it lags the scheduler by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["sacct", "-n", "-X", "-D", "-P", "-j", job, "-o", "State"], capture_output=True,
                             text=True, check=True)
        states = out.stdout.split()
        if (states and states[-1] not in ("PENDING", "RUNNING", "REQUEUED")) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def epochs_done(root: Path) -> int:
    histories = list(root.glob("runs/*/history.csv"))
    return max((len(h.read_text().splitlines()) - 1 for h in histories), default=0)


def wait_for_epochs(process: subprocess.Popen, root: Path, epochs: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while epochs_done(root) < epochs:
        assert process.poll() is None, f"the sweep ended before epoch {epochs}: {process.stdout.read()}"
        assert time.monotonic() < deadline, f"no epoch {epochs} in {timeout} s"
        time.sleep(0.2)


def outcome(root: Path) -> dict:
    """Per run: its result's numbers and its history without the wall-clock column."""
    found = {}
    for path in result_files(root):
        result = json.loads(path.read_text())
        with (path.parent / "history.csv").open() as f:
            history = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]
        found[path.parent.name] = {key: result[key] for key in ("status", "test_accuracy", "test_micro_f1",
                                                                "val_accuracy_best", "epochs_run", "threads")}
        found[path.parent.name]["history"] = history
    return found


def local(root: Path, data_root: Path, *overrides: str) -> dict:
    """The runs of ``overrides`` trained here, in this process (one thread, as each test worker
    and each SLURM task of these tests has), uninterrupted: what the cluster's runs must equal."""
    from latentexp.launch.sweeps import job_configs

    with computing_on(1):
        for job in job_configs([f"dataset.root={data_root}", f"output_root={root}", "device=cpu",
                                "dataset.download=false", *overrides]):
            run(job)
    return outcome(root)


@pytest.fixture(scope="module")
def local_long_root(tmp_path_factory, data_root) -> Path:
    root = tmp_path_factory.mktemp("local") / "out"
    local(root, data_root, *LONG_RUN)
    return root


@pytest.fixture(scope="module")
def local_long_run(local_long_root) -> dict:
    return outcome(local_long_root)


def epoch_seconds(root: Path) -> float:
    """The mean epoch time of the run under ``root``: how fast this machine trains right now."""
    (history,) = root.glob("runs/*/history.csv")
    with history.open() as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    return sum(seconds) / len(seconds)


def test_a_two_seed_sweep_is_one_array_job_with_the_local_results(tmp_path, cli_env, data_root, capsys):
    cluster = tmp_path / "cluster"
    code, out = finish(sweep(cluster, cli_env, "seed=0,1", *QUICK), cluster)
    assert code == 0, out
    tasks = job_ids(cluster)
    assert len(tasks) == 2 and len({t.split("_")[0] for t in tasks}) == 1, tasks  # one array job
    assert all(sacct_states(t) == ["COMPLETED"] for t in tasks)
    here = local(tmp_path / "local", data_root, "seed=0,1", *QUICK)
    assert outcome(cluster) == here and len(here) == 2
    # status and report read the tree the cluster wrote, submitit's logs beside it
    assert cli("status", str(cluster)) == 0 and "2 runs: 2 finished" in capsys.readouterr().out
    report = tmp_path / "report"
    assert cli("report", str(cluster), "--out", str(report), "--no-figures", "--format", "md") == 0
    assert "| 2 |" in next(report.glob("*.md")).read_text()  # two seeds in a cell
    assert list(cluster.glob(".submitit/*/*_log.out"))


def test_a_requeued_task_resumes_from_its_checkpoint(tmp_path, cli_env, local_long_run):
    root = tmp_path / "out"
    process = sweep(root, cli_env, *LONG_RUN)
    wait_for_epochs(process, root, 3)
    (job,) = job_ids(root)
    subprocess.run(["scontrol", "requeue", job], check=True)
    code, out = finish(process, root)
    assert code == 0, out
    assert sacct_states(job)[0] == "REQUEUED" and sacct_states(job)[-1] == "COMPLETED"
    assert "resuming from" in "".join(p.read_text() for p in root.glob(".submitit/*/*_log.out"))
    assert outcome(root) == local_long_run


def test_a_cancelled_task_resumes_when_the_command_runs_again(tmp_path, cli_env, local_long_run):
    root = tmp_path / "out"
    process = sweep(root, cli_env, *LONG_RUN)
    wait_for_epochs(process, root, 3)
    (job,) = job_ids(root)
    subprocess.run(["scancel", job], check=True)
    code, out = finish(process, root)
    assert code == 1 and "Traceback" not in out, out
    assert "run the same command again" in out
    code, out = finish(sweep(root, cli_env, *LONG_RUN), root)
    assert code == 0, out
    assert "resuming from" in "".join(p.read_text() for p in root.glob(".submitit/*/*_log.out"))
    assert outcome(root) == local_long_run


def test_a_task_out_of_time_is_requeued_by_submitit_and_resumes(tmp_path, cli_env, local_long_root):
    # A one-minute limit (SLURM's least), signalled 55 s before it: SLURM checks its jobs every 30 s,
    # so the signal comes 5 to 35 s after the task starts; submitit requeues the task, and the
    # task resumes from its checkpoint. The run is sized to about 45 s of training at this
    # machine's present speed (the local run's epochs): it outlasts the first signal and needs a
    # requeue or two, however loaded the machine is; a slow one may need more than the shipped 3.
    epochs = max(100, round(45 / epoch_seconds(local_long_root)))
    root = tmp_path / "out"
    limits = ("hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=55",
              "hydra.launcher.max_num_timeout=10")
    code, out = finish(sweep(root, cli_env, *LONG_RUN, f"trainer.max_epochs={epochs}", *limits), root,
                       timeout=600)
    assert code == 0, out
    (job,) = job_ids(root)
    # Not its last state: a signal that comes as the finished task exits marks that run FAILED
    # after submitit wrote its result (seen here); the result and the run are what count.
    assert "REQUEUED" in sacct_states(job)
    logs = "".join(p.read_text() for p in root.glob(".submitit/*/*_log.*"))
    assert "this job is timed-out" in logs and "resuming from" in logs
    assert "Job completed successfully" in logs
    (result,) = outcome(root).values()  # every epoch once, in order, across the requeues
    assert result["status"] == "finished"
    assert [int(row["epoch"]) for row in result["history"]] == list(range(1, epochs + 1))


def test_a_bad_config_stops_before_anything_is_submitted(tmp_path, cli_env):
    root = tmp_path / "out"
    code, out = finish(sweep(root, cli_env, "seed=0,1", *QUICK, "trainer.batch_size=0"), root, timeout=60)
    assert code == 2 and "trainer.batch_size" in out and "Traceback" not in out, out
    assert not (root / ".submitit").exists()
