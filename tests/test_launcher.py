"""The local launcher, the default of `latentexp train -m`: jobs side by side (one per core, one
thread each, on a CPU), every sweep guarantee kept, no job outliving a killed sweep, and a resumed
run going on with the thread count it started with."""

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.helpers import (
    MACHINE_CORES,
    REPO_ROOT,
    cli,
    computing_on,
    every_core,
    latentexp,
    result_files,
)

from latentexp.errors import ConfigError
from latentexp.launch import launcher
from latentexp.launch.launcher import LOCAL_LAUNCHER, check_settings, forks_jobs, machine_cores, plan_workers
from latentexp.runs.rundir import RunDir

SMALL = ["dataset.limit_train=600", "dataset.limit_test=100", "trainer.batch_size=32", "device=cpu"]


@pytest.mark.parametrize(("jobs", "n_jobs", "threads", "cores", "gpus", "expected"), [
    (20, None, None, 2, 0, (2, 1)),  # a CPU: one job per core, one thread each
    (20, None, None, 16, 0, (16, 1)),
    (1, None, None, 8, 0, (1, 8)),  # a sweep of one job is a single run: every core
    (3, None, None, 8, 0, (3, 2)),  # never more jobs than there are; the cores shared among them
    (20, None, None, 16, 2, (2, 8)),  # CUDA: one job per GPU
    (20, 4, None, 16, 1, (4, 4)),  # several jobs on one GPU, as asked
    (20, 3, 1, 2, 0, (3, 1)),  # as asked, even beyond the cores
])
def test_jobs_at_once_and_threads_per_job(jobs, n_jobs, threads, cores, gpus, expected):
    assert plan_workers(jobs, n_jobs, threads, cores, gpus) == expected


class RunsInTheJob:
    """A job's common file that, unpickled in the job, runs ``code`` there: a job without training."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def job_running(path: Path, code: str) -> list[str]:
    """worker_main's arguments for a job whose common file ``path`` runs ``code``."""
    path.write_bytes(pickle.dumps(RunsInTheJob(code)))
    return [str(path), f"{path}.return", "0", "[]"]


@pytest.mark.skipif(not forks_jobs(gpus=0), reason="jobs are forked on Linux only")
def test_the_starter_forks_each_job_and_reports_how_it_ended(tmp_path, monkeypatch):
    """Each job a fork of the starter in a session of its own, its output in the sweep's pipes, its
    exit code reported; when the starter dies its job dies with it, and the pool is told to start
    fresh processes."""
    monkeypatch.setattr(launcher, "JOB_IMPORTS", ())  # nothing to import: no torch for this test
    (tmp_path / "nothing").write_bytes(pickle.dumps(None))
    starter = launcher._Starter(tmp_path / "nothing", dict(os.environ))
    try:
        hello = "import os; print('hello from', os.getpid(), flush=True); os._exit(7)"
        said = starter.start(job_running(tmp_path / "said", hello), forward=True)
        assert said.wait(60) == 7 and said.stdout.read().decode() == f"hello from {said.pid}\n"
        sleep = "import time; time.sleep(60)"
        sleeper = starter.start(job_running(tmp_path / "sleeper", sleep), forward=True)
        assert sleeper.poll() is None and parent_of(sleeper.pid) == starter.process.pid
        assert os.getsid(sleeper.pid) == sleeper.pid
        starter.process.kill()
        assert sleeper.wait(30) == -signal.SIGKILL
        wait_for(lambda: not alive(sleeper.pid), 10, "the job to die with its starter")
        assert starter.start(job_running(tmp_path / "later", "pass"), forward=True) is None
    finally:
        starter.close()


@pytest.mark.skipif(not forks_jobs(gpus=0), reason="jobs are forked on Linux only")
def test_a_job_whose_starter_dies_as_it_reports_the_fork_ends_as_killed(tmp_path, monkeypatch):
    """The starter dies between reporting a job and the sweep taking it (forced here: the sweep's
    thread, woken by the report, kills the starter and sleeps before it takes the lock again); the
    job died with the starter, and the sweep must see it ended rather than wait for it forever."""
    monkeypatch.setattr(launcher, "JOB_IMPORTS", ())
    (tmp_path / "nothing").write_bytes(pickle.dumps(None))
    sleeper = job_running(tmp_path / "job", "import time; time.sleep(60)")
    starter = launcher._Starter(tmp_path / "nothing", dict(os.environ))

    class LateWaker(threading.Condition):
        def wait(self, timeout=None):
            woken = super().wait(timeout)
            if starter.started:  # the fork is reported (not a timeout while the starter starts)
                self.release()
                starter.process.kill()
                starter.reader.join(10)  # the reader has seen the end of the socket
                self.acquire()
            return woken

    starter.changed = LateWaker(starter.lock)
    try:
        job = starter.start(sleeper, forward=True)
        assert job is not None and job.wait(10) == -signal.SIGKILL
        wait_for(lambda: not alive(job.pid), 10, "the job to die with its starter")
    finally:
        starter.close()


def test_a_pool_whose_starter_fails_runs_its_jobs_as_fresh_processes(tmp_path, monkeypatch, capfd, caplog):
    """The path of a machine with CUDA or without Linux too: each job a fresh interpreter, a child of
    the sweep, its output forwarded marked with its number."""
    monkeypatch.setattr(launcher, "JOB_IMPORTS", ("latentexp.no_such_module",))
    job_running(tmp_path / "job", "import os; print('job', os.getpid(), 'of', os.getppid(), flush=True); "
                                  "os._exit(0)")
    returns = launcher._Pool(tmp_path / "job", tmp_path, at_once=2, threads=1, fork=True).run(
        [(0, ["a=1"]), (1, ["a=2"])])
    assert [r.status.name for r in returns] == ["COMPLETED", "COMPLETED"]
    said = capfd.readouterr().out.splitlines()
    assert sorted(line.split()[0] for line in said) == ["#0", "#1"]
    assert all(line.endswith(f"of {os.getpid()}") for line in said), said
    assert "the process that forks the jobs has ended (exit 1); each job from now on starts as a fresh " \
           "process" in caplog.text


@pytest.mark.parametrize("fork", [True, False])
def test_a_job_killed_from_outside_is_one_paragraph_and_the_sweep_fails_without_a_traceback(
        tmp_path, monkeypatch, caplog, fork):
    """SIGKILL is what the out-of-memory killer sends: the sweep says which job, why it may have
    happened and how to resume, the other jobs run, and the sweep ends in exit 1, not Hydra's
    traceback of a RuntimeError."""
    monkeypatch.setattr(launcher, "JOB_IMPORTS", ())
    job_running(tmp_path / "job", "import os, signal, sys; sys.argv[-1] == '[\"a=1\"]' and "
                                  "os.kill(os.getpid(), signal.SIGKILL); os._exit(0)")
    returns = launcher._Pool(tmp_path / "job", tmp_path, at_once=1, threads=1, fork=fork).run(
        [(0, ["a=1"]), (1, ["a=2"])])
    assert [r.status.name for r in returns] == ["FAILED", "COMPLETED"]
    with pytest.raises(SystemExit) as ended:
        _ = returns[0].return_value
    assert ended.value.code == launcher.KILLED_EXIT == 1
    assert "job #0 (a=1) was killed by SIGKILL (the kernel's out-of-memory killer" in caplog.text
    assert "run the same command again to resume it" in caplog.text


def test_jobs_are_forked_on_linux_without_cuda():
    assert forks_jobs(gpus=0) == sys.platform.startswith("linux")
    assert not forks_jobs(gpus=1)  # a process that forks must not have touched CUDA


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "two"])
def test_launcher_settings_that_cannot_run_are_refused(value):
    with pytest.raises(ConfigError, match="positive number"):
        check_settings(value, None)
    with pytest.raises(ConfigError, match="threads_per_job"):
        check_settings(None, value)


def test_the_checks_know_the_launcher_hydra_composes():
    from hydra_plugins.latentexp_launcher.local_launcher import LocalLauncherConf
    from latentexp.config.tree import compose

    composed = compose([], with_hydra=True).hydra.launcher._target_
    assert LocalLauncherConf._target_ == LOCAL_LAUNCHER == composed


@pytest.mark.slow
def test_a_bad_launcher_setting_stops_the_sweep_before_any_job(here, capfd):
    assert cli("train", "-m", "loss=ce,magnet", "hydra.launcher.n_jobs=0", *SMALL) == 2
    said = capfd.readouterr().err
    assert "hydra.launcher.n_jobs=0 is invalid" in said, said
    assert not (here / "outputs").exists()


def holders(root) -> dict:
    """Run directory name -> pid of the live job holding its lock."""
    return {d.name: h["pid"] for d in sorted((root / "runs").glob("*")) if (h := RunDir(d).holder())}


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie has exited
    except FileNotFoundError:
        return False


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def ctrl_c_stops() -> None:
    """SIGINT's default action, as in a terminal: a suite started in the background (`cmd &` in a
    script) passes SIGINT down as ignored, and Python then leaves it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sweep_process(args, env, cwd, preexec_fn=None, **kwargs) -> subprocess.Popen:
    def start() -> None:
        every_core()
        if preexec_fn is not None:
            preexec_fn()

    return subprocess.Popen([sys.executable, "-m", "latentexp", *args], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=start, **kwargs)


@pytest.mark.slow
def test_a_killed_sweep_leaves_no_job_running_and_the_same_command_finishes_it(tmp_path, cli_env):
    """The default launcher: one job per core with one thread each (on 2 cores, 2 × 1); killed
    with SIGKILL while its jobs train, then the same command resumes them."""
    # 10 epochs: none can finish before the kill (an epoch each), and the resumed ones end soon after.
    sweep = ["train", "-m", "loss=ce", "seed=0,1,2", "trainer.max_epochs=10", *SMALL]
    at_once, threads = plan_workers(3, None, None, len(MACHINE_CORES) or machine_cores(), 0)  # a user's cores
    proc = sweep_process(sweep, cli_env, tmp_path)
    root = tmp_path / "outputs"
    try:
        jobs = wait_for(lambda: len(h := holders(root)) == at_once and h, 180, f"{at_once} jobs training")
        wait_for(lambda: len(list(root.glob("runs/*/history.csv"))) == at_once, 180, "an epoch of each")
        # Each job in a session of its own; forked from one starter, itself started by the sweep.
        parents = {parent_of(pid) for pid in jobs.values()}
        assert all(os.getsid(pid) == pid for pid in jobs.values())
        if forks_jobs(gpus=0) and at_once > 1:
            (starter,) = parents
            assert parent_of(starter) == proc.pid
            assert "starter_main" in Path(f"/proc/{starter}/cmdline").read_text()
            jobs["the starter"] = starter
        elif at_once > 1:
            assert parents == {proc.pid}
    finally:
        proc.kill()  # kill -9 of the sweep command: nothing of it can clean up
        out, err = proc.communicate()
    assert f"Launching 3 jobs, {at_once} at a time with {threads} CPU thread" in out + err
    wait_for(lambda: not any(alive(pid) for pid in jobs.values()), 10, "the jobs to die with the sweep")
    wait_for(lambda: holders(root) == {}, 10, "every run lock to be free")  # a loaded kernel takes a moment
    seen = {p: p.stat().st_mtime_ns for p in root.glob("runs/*/history.csv")}
    time.sleep(3)  # nothing trains on, and no further job starts
    assert {p: p.stat().st_mtime_ns for p in root.glob("runs/*/history.csv")} == seen
    assert not result_files(root) and len(list(root.glob("runs/*"))) == at_once

    again = latentexp(sweep, cli_env, tmp_path)
    said = again.stdout + again.stderr
    assert again.returncode == 0, said[-3000:]
    assert said.count("resuming from") == at_once, said[-3000:]
    if at_once > 1:  # several at once: each job's lines are marked with its number
        assert {f"#{i} " for i in range(3)} <= {line[:3] for line in said.splitlines()}
    results = [json.loads(p.read_text()) for p in result_files(root)]
    assert len(results) == 3 and all(r["status"] == "finished" for r in results)
    assert {r["threads"] for r in results} == {threads}


@pytest.mark.slow
def test_a_run_resumed_by_a_sweep_keeps_its_thread_count_and_ends_at_the_uninterrupted_result(tmp_path,
                                                                                            cli_env,
                                                                                            monkeypatch):
    """Started as a single run on 2 threads and killed in its third checkpoint write, it is resumed
    by a sweep that gives its jobs 1 thread each, and ends where the uninterrupted run ends."""
    run = ["loss=magnet", "lambda=0.5", "trainer.max_epochs=4", *SMALL]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LATENTEXP_DATA", cli_env["LATENTEXP_DATA"])
    with computing_on(threads=2):  # the uninterrupted run needs no process of its own
        assert cli("train", *run, "output_root=straight") == 0
    # Killed while it writes epoch 3's checkpoint.
    fault = {**cli_env, "OMP_NUM_THREADS": "2", "LATENTEXP_FAULT": "checkpoint.pt:3"}
    killed = latentexp(["train", *run, "output_root=resumed"], fault, tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    sweep = ["train", "-m", *run, "seed=0,1", "output_root=resumed", "hydra.launcher.n_jobs=2",
             "hydra.launcher.threads_per_job=1"]
    resumed = latentexp(sweep, cli_env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    said = resumed.stdout + resumed.stderr
    assert "resuming with the 2 CPU threads the run started with (this job was given 1)" in said, said[-3000:]

    (reference,) = result_files(tmp_path / "straight")
    results = {json.loads(p.read_text())["spec"]["seed"]: p for p in result_files(tmp_path / "resumed")}
    ours, theirs = json.loads(results[0].read_text()), json.loads(reference.read_text())
    assert ours["spec"]["name"] == theirs["spec"]["name"]
    assert ours["threads"] == theirs["threads"] == 2 and json.loads(results[1].read_text())["threads"] == 1
    for key in ("test_accuracy", "test_micro_f1", "val_accuracy_best", "silhouette_test", "epochs_run"):
        assert ours[key] == theirs[key], key
    without_seconds = lambda path: [row.rsplit(",", 1)[0] for row in path.read_text().splitlines()]  # noqa: E731
    assert without_seconds(results[0].parent / "history.csv") == without_seconds(reference.parent /
                                                                               "history.csv")


@pytest.mark.slow
def test_ctrl_c_stops_every_job_of_a_sweep_with_one_line(tmp_path, cli_env):
    sweep = ["train", "-m", "loss=ce", "seed=0,1,2", "trainer.max_epochs=30", "hydra.launcher.n_jobs=2",
             *SMALL]
    proc = sweep_process(sweep, cli_env, tmp_path, preexec_fn=ctrl_c_stops)
    root = tmp_path / "outputs"
    try:
        jobs = wait_for(lambda: len(h := holders(root)) == 2 and h, 180, "two jobs training")
        proc.send_signal(signal.SIGINT)  # to the sweep alone: its jobs run in sessions of their own
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert err.count("interrupted") == 1 and "Traceback" not in err, err[-3000:]
    assert err.rstrip().splitlines()[-1].startswith("latentexp: interrupted."), err[-3000:]
    assert not any(alive(pid) for pid in jobs.values()) and holders(root) == {}


@pytest.mark.slow
def test_ctrl_c_of_a_joblib_sweep_is_the_one_line_without_the_resource_trackers_warning(tmp_path, cli_env):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = ["train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "loss=ce", "seed=0,1",
             "trainer.max_epochs=30", *SMALL]
    # A terminal's Ctrl-C reaches the whole foreground group: the sweep and joblib's workers.
    proc = sweep_process(sweep, cli_env, tmp_path, start_new_session=True, preexec_fn=ctrl_c_stops)
    try:
        wait_for(lambda: holders(tmp_path / "outputs"), 180, "a job training")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    assert "resource_tracker" not in err and "leaked" not in err, err[-3000:]
    assert err.rstrip().splitlines()[-1].startswith("latentexp: interrupted."), err[-3000:]


def test_a_job_dies_with_its_sweep_even_when_the_sweep_dies_first(tmp_path):
    """die_with_parent on its own: a child whose parent has gone is killed, not left to run."""
    code = ("import os, sys, time; from latentexp.launch.launcher import die_with_parent; "
            "die_with_parent(int(sys.argv[1])); print('watching', flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, os; p = subprocess.Popen([sys.executable, '-c', "
                               f"{code!r}, str(os.getpid())], stdout=subprocess.PIPE, text=True); "
                               "print(p.pid, p.stdout.readline().strip(), flush=True); import time; "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    pid, state = parent.stdout.readline().split()
    assert state == "watching" and alive(int(pid))
    parent.kill()
    parent.wait()
    wait_for(lambda: not alive(int(pid)), 10, "the child to die with its parent")
