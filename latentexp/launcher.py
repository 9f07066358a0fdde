"""The local launcher (``hydra/launcher=local``, the default of `latentexp train -m`): a sweep's jobs
as child processes, as many at once as the machine has cores (one per GPU where CUDA is), each with
its share of the CPU threads.

- Each job is a fresh process that runs Hydra's own ``run_job`` on the task function (cloudpickled,
  as Hydra's joblib launcher does), so its run directory, log and return value are a Hydra job's.
  One job at a time runs in this process instead, as Hydra's basic launcher does.
- A job never outlives the sweep: a killed sweep command (even ``kill -9``) takes its jobs with it
  (PR_SET_PDEATHSIG on Linux, a watch on the parent elsewhere); their runs resume from their last
  checkpoint when the command runs again. Ctrl-C stops every job, and the CLI prints its one line.
- Jobs run in a session of their own, so a terminal's Ctrl-C reaches only the sweep, which stops
  them. With several at once, their output is forwarded line by line, each line marked ``#<job>``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

LOCAL_LAUNCHER = "hydra_plugins.latentexp_launcher.local_launcher.LocalLauncher"  # its _target_
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 10.0  # how long a stopped job may take to die before SIGKILL
THREADS_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
THREADS_ENV = "LATENTEXP_THREADS"


def machine_cores() -> int:
    """The cores this process may run on (its affinity: a SLURM allocation, taskset), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_settings(n_jobs: Any, threads_per_job: Any) -> None:
    """Refuse launcher settings that cannot run (a ConfigError, before any job starts)."""
    from latentexp.errors import ConfigError

    for key, value in (("n_jobs", n_jobs), ("threads_per_job", threads_per_job)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"hydra.launcher.{key}={value} is invalid: give a positive number, or null for "
                              f"the default (jobs: one per core on a CPU, one per GPU with CUDA; threads: "
                              f"the cores shared among the jobs).")


def plan_workers(jobs: int, n_jobs: int | None, threads_per_job: int | None, cores: int,
                 gpus: int) -> tuple[int, int]:
    """(jobs at once, threads per job). Unset, the jobs at once are one per GPU where CUDA is,
    else one per core, never more than there are jobs; the threads are the cores shared among them."""
    at_once = n_jobs if n_jobs is not None else (gpus or cores)
    at_once = max(1, min(at_once, jobs))
    threads = threads_per_job if threads_per_job is not None else max(1, cores // at_once)
    return at_once, threads


def jobs_at_once(n_jobs: Any) -> int:
    """How many jobs the local launcher runs at once for a ``hydra.launcher.n_jobs`` (null, or a
    joblib-style -1: one per GPU or core), so that a search asks as many trials at a time."""
    if n_jobs is None or int(n_jobs) < 1:
        return cuda_devices() or machine_cores()
    return int(n_jobs)


@dataclass
class _Job:
    index: int  # Hydra's job number
    overrides: list[str]
    process: subprocess.Popen
    return_file: Path
    started: float = field(default_factory=time.monotonic)
    forwarders: list[threading.Thread] = field(default_factory=list)


def launch(launcher, job_overrides, initial_job_idx: int) -> list:
    """Hydra's Launcher.launch: run every job, ``launcher.n_jobs`` at a time, and return their
    JobReturns in order."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import configure_log, filter_overrides, setup_globals

    setup_globals()
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    check_settings(launcher.n_jobs, launcher.threads_per_job)
    cores = machine_cores()
    at_once, threads = plan_workers(len(job_overrides), launcher.n_jobs, launcher.threads_per_job, cores,
                                    cuda_devices())
    log.info("Launching %d jobs, %d at a time with %d CPU thread%s each (%d cores here); sweep output "
             "dir: %s", len(job_overrides), at_once, threads, "" if threads == 1 else "s", cores, sweep_dir)
    for offset, overrides in enumerate(job_overrides):
        log.info("\t#%d : %s", initial_job_idx + offset, " ".join(filter_overrides(overrides)))

    jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
    if at_once == 1:  # one at a time: in this process, as Hydra's basic launcher, without a start-up per job
        return [_run_here(launcher, index, overrides, threads) for index, overrides in jobs]

    import cloudpickle

    from latentexp.jobs import state as planned_jobs

    with tempfile.TemporaryDirectory(prefix="latentexp-sweep-") as scratch:
        common = Path(scratch) / "job.pkl"
        common.write_bytes(cloudpickle.dumps((launcher.hydra_context, config, launcher.task_function,
                                              Singleton.get_state(), planned_jobs())))
        return _Pool(common, Path(scratch), at_once, threads).run(jobs)


def _sweep_job(hydra_context, config, index: int, overrides: list[str]):
    """Hydra's config of one job of the sweep, set as the current one."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from latentexp.jobs import planned

    job = planned(overrides)
    if job is not None:  # composed once, by `latentexp train`
        sweep_config = copy.deepcopy(job.config)
        OmegaConf.copy_cache(from_config=config, to_config=sweep_config)
    else:
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{index}"
        sweep_config.hydra.job.num = int(index)
    HydraConfig.instance().set_config(sweep_config)
    return sweep_config


def _run_job(hydra_context, task_function, sweep_config):
    from hydra.core.utils import run_job

    return run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _run_here(launcher, index: int, overrides: list[str], threads: int):
    """One job in this process, on ``threads`` CPU threads (a resumed run may change them: reset)."""
    import torch
    from hydra.core.utils import configure_log

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        config = _sweep_job(launcher.hydra_context, launcher.config, index, overrides)
        return _run_job(launcher.hydra_context, launcher.task_function, config)
    finally:
        torch.set_num_threads(before)
        configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)


class _Pool:
    def __init__(self, common: Path, scratch: Path, at_once: int, threads: int):
        self.common, self.scratch, self.at_once, self.threads = common, scratch, at_once, threads
        self.forward = at_once > 1  # one job alone keeps the terminal (and its progress bars)
        self.lock = threading.Lock()

    def run(self, jobs: list[tuple[int, list[str]]]) -> list:
        pending, running, returns = list(jobs), [], {}
        refused: int | None = None  # exit code of a job refused by latentexp (bad data, no device)
        try:
            while pending or running:
                while pending and refused is None and len(running) < self.at_once:
                    running.append(self.start(*pending.pop(0)))
                time.sleep(POLL_SECONDS)
                for job in [j for j in running if j.process.poll() is not None]:
                    running.remove(job)
                    returns[job.index], code = self.collect(job)
                    if code is not None and refused is None:
                        refused = code
                        if pending:
                            log.error("job #%d was refused (exit %d): starting no further jobs; the %d "
                                      "running finish first", job.index, code, len(running))
                if refused is not None and not running:
                    pending.clear()
        except BaseException:
            self.stop(running)  # Ctrl-C, or anything else: no job outlives the sweep
            raise
        if refused is not None:
            raise SystemExit(refused)
        return [returns[index] for index, _ in jobs]

    def start(self, index: int, overrides: list[str]) -> _Job:
        return_file = self.scratch / f"return-{index}.pkl"
        env = {**os.environ, THREADS_ENV: str(self.threads), **dict.fromkeys(THREADS_VARIABLES,
                                                                             str(self.threads))}
        command = [sys.executable, "-c", "from latentexp.launcher import worker_main; worker_main()",
                   str(self.common), str(return_file), str(os.getpid()), str(index), json.dumps(overrides)]
        pipe = subprocess.PIPE if self.forward else None
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe,
                                   start_new_session=True)
        job = _Job(index, overrides, process, return_file)
        if self.forward:
            job.forwarders = [self._forward(process.stdout, sys.stdout, index),
                              self._forward(process.stderr, sys.stderr, index)]
        return job

    def _forward(self, source: IO[bytes], target: IO[str], index: int) -> threading.Thread:
        def copy() -> None:
            for raw in iter(source.readline, b""):
                line = raw.decode(errors="replace").rstrip("\r\n")
                with self.lock:
                    try:
                        target.write(f"#{index} {line}\n")
                        target.flush()
                    except (BrokenPipeError, ValueError):  # the reader has gone; keep draining
                        pass
            source.close()

        thread = threading.Thread(target=copy, daemon=True)
        thread.start()
        return thread

    def collect(self, job: _Job) -> tuple[Any, int | None]:
        """The job's JobReturn, and the exit code when latentexp refused it (SystemExit)."""
        import cloudpickle
        from hydra.core.utils import JobReturn, JobStatus

        for thread in job.forwarders:
            thread.join()
        code = job.process.returncode
        if job.return_file.exists():
            return cloudpickle.loads(job.return_file.read_bytes()), None
        if code == 0:  # the job called sys.exit(0)
            return JobReturn(overrides=job.overrides, status=JobStatus.COMPLETED), None
        failed = JobReturn(overrides=job.overrides, status=JobStatus.FAILED)
        if code > 0:  # the job exited on its own: latentexp's refusal, already printed by the job
            failed.return_value = SystemExit(code)
            return failed, code
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        failed.return_value = RuntimeError(f"job #{job.index} was killed by {name}; run the same command "
                                           f"again to resume it from its last checkpoint")
        log.error("job #%d was killed by %s", job.index, name)
        return failed, None

    def stop(self, running: list[_Job]) -> None:
        """SIGTERM to every running job (each in its own session), then SIGKILL after a grace."""
        for job in running:
            _signal(job.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for job in running:
            try:
                job.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(job.process, signal.SIGKILL)
                job.process.wait()


def _signal(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already
        os.killpg(process.pid, sig)  # the job and anything it started


# ---------------------------------------------------------------------- in the job's process


def die_with_parent(parent: int) -> None:
    """End this process when the sweep process ``parent`` dies, however it dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)

    def watch() -> None:  # elsewhere, and for a parent gone before prctl took effect
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)

    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=watch, daemon=True).start()


def worker_main() -> None:
    """One job: ``python -c ... COMMON_FILE RETURN_FILE PARENT_PID INDEX OVERRIDES_JSON``."""
    common, return_file, parent, index, overrides = sys.argv[1:6]
    die_with_parent(int(parent))
    threads = int(os.environ.get(THREADS_ENV, "0"))
    if threads:
        import torch

        torch.set_num_threads(threads)

    import cloudpickle
    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals

    from latentexp import jobs

    jobs.register_resolvers()
    hydra_context, config, task_function, singleton_state, planned = cloudpickle.loads(
        Path(common).read_bytes())
    jobs.install(planned)  # the sweep's jobs, resolved by `latentexp train`
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = _sweep_job(hydra_context, config, int(index), json.loads(overrides))
    ret = _run_job(hydra_context, task_function, sweep_config)
    try:
        payload = cloudpickle.dumps(ret)
    except Exception:  # noqa: BLE001 - an exception that does not pickle travels as its text
        import traceback

        ret.return_value = RuntimeError("".join(traceback.format_exception(ret._return_value)))
        payload = cloudpickle.dumps(ret)
    Path(return_file).write_bytes(payload)  # read once this process has exited
