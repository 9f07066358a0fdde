"""The local launcher (``hydra/launcher=local``, the default of `latentexp train -m`): a sweep's jobs
as child processes, as many at once as the machine has cores (one per GPU where CUDA is), each with
its share of the CPU threads.

- Each job is a process of its own that runs Hydra's own ``run_job`` on the task function
  (cloudpickled, as Hydra's joblib launcher does), so its run directory, log and return value are a
  Hydra job's. One job at a time runs in this process instead, as Hydra's basic launcher does.
- On Linux without CUDA each job is forked from a starter process that imported what a job imports
  and never ran one (torch's compiler front end, scikit-learn, the trainer: seconds per job), so a
  job starts in a moment; elsewhere each job is a fresh interpreter. Either way a job carries no
  state from another job.
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
import select
import signal
import socket
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
WORKER_ENTRY = "from latentexp.launch.launcher import worker_main; worker_main()"  # a worker process
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 10.0  # how long a stopped job may take to die before SIGKILL
THREADS_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
THREADS_ENV = "LATENTEXP_THREADS"
# What a job imports that takes seconds (torch's compiler front end, which the first optimizer
# imports; scikit-learn, for the split and the metrics; the trainer): the starter imports them once.
JOB_IMPORTS = ("torch._dynamo", "sklearn.model_selection", "sklearn.metrics", "latentexp.launch.training")


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


def forks_jobs(gpus: int) -> bool:
    """Whether the jobs are forked from a starter process: on Linux (fork, PR_SET_PDEATHSIG) without
    CUDA (a process that forks must not have touched CUDA, and a GPU job's start-up is small
    against its run), else each job is a fresh interpreter."""
    return sys.platform.startswith("linux") and gpus == 0


@dataclass
class _Job:
    index: int  # Hydra's job number
    overrides: list[str]
    process: subprocess.Popen | _ForkedProcess
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
    cores, gpus = machine_cores(), cuda_devices()
    at_once, threads = plan_workers(len(job_overrides), launcher.n_jobs, launcher.threads_per_job, cores,
                                    gpus)
    log.info("Launching %d jobs, %d at a time with %d CPU thread%s each (%d cores here); sweep output "
             "dir: %s", len(job_overrides), at_once, threads, "" if threads == 1 else "s", cores, sweep_dir)
    for offset, overrides in enumerate(job_overrides):
        log.info("\t#%d : %s", initial_job_idx + offset, " ".join(filter_overrides(overrides)))

    jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
    if at_once == 1:  # one at a time: in this process, as Hydra's basic launcher, without a start-up per job
        return [_run_here(launcher, index, overrides, threads) for index, overrides in jobs]

    import cloudpickle

    from latentexp.launch.jobs import state as planned_jobs

    with tempfile.TemporaryDirectory(prefix="latentexp-sweep-") as scratch:
        common = Path(scratch) / "job.pkl"
        common.write_bytes(cloudpickle.dumps((launcher.hydra_context, config, launcher.task_function,
                                              Singleton.get_state(), planned_jobs())))
        return _Pool(common, Path(scratch), at_once, threads, forks_jobs(gpus)).run(jobs)


def _sweep_job(hydra_context, config, index: int, overrides: list[str]):
    """Hydra's config of one job of the sweep, set as the current one."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict, read_write

    from latentexp.launch.jobs import planned

    job = planned(overrides)
    if job is not None:  # composed once, by `latentexp train`
        sweep_config = copy.deepcopy(job.config)
        OmegaConf.copy_cache(from_config=config, to_config=sweep_config)
    else:
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    # read_write: a job planned by an earlier trial of a search (the same values proposed again)
    # holds the config Hydra's run_job left read-only
    with read_write(sweep_config.hydra), open_dict(sweep_config.hydra):
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
    def __init__(self, common: Path, scratch: Path, at_once: int, threads: int, fork: bool):
        self.common, self.scratch, self.at_once = common, scratch, at_once
        self.forward = at_once > 1  # one job alone keeps the terminal (and its progress bars)
        self.lock = threading.Lock()
        self.env = {**os.environ, THREADS_ENV: str(threads), **dict.fromkeys(THREADS_VARIABLES, str(threads))}
        self.starter = _Starter(common, self.env) if fork else None

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
            if self.starter is not None:  # nor one it was forking just then
                self.starter.close(kill=True)
                self.starter = None
            raise
        finally:
            if self.starter is not None:
                self.starter.close()
        if refused is not None:
            raise SystemExit(refused)
        return [returns[index] for index, _ in jobs]

    def start(self, index: int, overrides: list[str]) -> _Job:
        return_file = self.scratch / f"return-{index}.pkl"
        arguments = [str(self.common), str(return_file), str(index), json.dumps(overrides)]
        process = None
        if self.starter is not None:
            process = self.starter.start(arguments, self.forward)
            if process is None:  # the starter has gone (closed, its error in the log): fresh processes
                self.starter = None
        if process is None:
            command = [sys.executable, "-c", WORKER_ENTRY, str(os.getpid()), *arguments]
            pipe = subprocess.PIPE if self.forward else None
            process = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL, stdout=pipe,
                                       stderr=pipe, start_new_session=True)
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
        why = (" (the kernel's out-of-memory killer sends it when the machine runs out of memory; then run "
               "fewer jobs at once, hydra.launcher.n_jobs=1)" if -code == signal.SIGKILL else "")
        log.error("job #%d (%s) was killed by %s%s. Its run keeps every epoch up to its last checkpoint: "
                  "run the same command again to resume it; the sweep's other jobs went on.", job.index,
                  " ".join(job.overrides), name, why)
        failed.return_value = SystemExit(KILLED_EXIT)  # said above: the sweep ends with it, no traceback
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


class _ForkedProcess:
    """A job forked by the starter, seen as a Popen: its pid, its pipes, its exit code."""

    def __init__(self, pid: int, stdout: IO[bytes] | None, stderr: IO[bytes] | None):
        self.pid, self.stdout, self.stderr = pid, stdout, stderr
        self.returncode: int | None = None
        self._exited = threading.Event()

    def ended(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode if self._exited.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"job {self.pid}", timeout)
        return self.returncode


class _Starter:
    """The starter process (``starter_main``) and the sweep's end of its socket: ``start`` has it
    fork a job and returns the job as a _ForkedProcess; a reader thread takes the exit codes it
    reports. When the starter has gone, its running jobs (killed with it) end as SIGKILL's."""

    def __init__(self, common: Path, env: dict[str, str]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-c", "from latentexp.launch.launcher import starter_main; starter_main()",
                   str(os.getpid()), str(theirs.fileno()), str(common), *JOB_IMPORTS]
        # A session of its own, as the jobs: a terminal's Ctrl-C reaches the sweep alone, which stops them.
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                        pass_fds=[theirs.fileno()], start_new_session=True)
        theirs.close()
        self.socket, self.lock = ours, threading.Lock()
        self.jobs: dict[int, _ForkedProcess] = {}  # pid -> a job running
        self.started: dict[int, int] = {}  # request number -> pid
        self.exits: dict[int, int] = {}  # pid -> exit code, for a job reported before start() took it
        self.changed = threading.Condition(self.lock)
        self.gone = False
        self.requests = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = self.socket.recv(4096)
            except OSError:
                message = b""
            with self.changed:
                if not message:  # the starter has gone, and its running jobs with it
                    self.gone = True
                    for job in self.jobs.values():
                        job.ended(-signal.SIGKILL)
                    self.jobs.clear()
                    self.changed.notify_all()
                    return
                kind, number, code = json.loads(message)
                if kind == "started":
                    self.started[number] = code
                elif number in self.jobs:  # forgotten once ended: a later job may get its pid
                    self.jobs.pop(number).ended(code)
                else:  # ended before start() took it
                    self.exits[number] = code
                self.changed.notify_all()

    def start(self, arguments: list[str], forward: bool) -> _ForkedProcess | None:
        """Fork a job running worker_main on ``arguments``; None when the starter has gone."""
        pipes = [os.pipe(), os.pipe()] if forward else []
        try:
            with self.changed:
                number, self.requests = self.requests, self.requests + 1
                try:
                    socket.send_fds(self.socket, [json.dumps([number, arguments]).encode()],
                                    [write for _, write in pipes])
                except OSError:
                    self.gone = True
                finally:
                    for _, write in pipes:
                        os.close(write)
                while number not in self.started and not self.gone:  # its end of file sets gone
                    self.changed.wait(1.0)
                if number in self.started:
                    pid = self.started.pop(number)
                    outputs = [os.fdopen(read, "rb") for read, _ in pipes] or [None, None]
                    pipes = []  # the files own them now
                    job = _ForkedProcess(pid, *outputs)
                    if pid in self.exits:
                        job.ended(self.exits.pop(pid))
                    elif self.gone:  # the starter ended after forking it: the job died with it
                        job.ended(-signal.SIGKILL)
                    else:
                        self.jobs[pid] = job
                    return job
        finally:  # read ends no job took (the starter gone, or Ctrl-C while it starts)
            for read, _ in pipes:
                os.close(read)
        log.warning("the process that forks the jobs has ended (exit %s); each job from now on starts as a "
                    "fresh process", self.close())
        return None

    def close(self, kill: bool = False) -> int | None:
        """End the starter, killed at once with ``kill`` (a job it is forking then dies with it),
        and return its exit code. Every wait is bounded."""
        if kill:
            with contextlib.suppress(OSError):
                self.process.kill()
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        code = None
        for last_try in (False, True):
            try:
                code = self.process.wait(timeout=STOP_GRACE_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if not last_try:
                    self.process.kill()
        if threading.current_thread() is not self.reader:
            self.reader.join(STOP_GRACE_SECONDS)  # it ends at the socket's end of file
        self.socket.close()
        return code


KILLED_EXIT = 1  # a sweep with a job killed from outside: a failed state, said in one paragraph


def _signal(process: subprocess.Popen | _ForkedProcess, sig: int) -> None:
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


def starter_main() -> None:
    """The starter: ``python -c ... SWEEP_PID SOCKET_FD COMMON_FILE MODULE...``. It imports the
    modules and what the task needs, then forks a job for each request of the sweep and reports
    each job's pid and exit code. A forked job returns from here into worker_main, and ends as
    that process would."""
    sweep, fd, common, modules = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    die_with_parent(sweep)
    import importlib

    import cloudpickle

    for name in modules:
        importlib.import_module(name)
    cloudpickle.loads(Path(common).read_bytes())  # imports what the task function and the config need
    starter = os.getpid()
    arguments = _serve(socket.socket(fileno=fd))
    if arguments is None:  # the sweep closed the socket, or has gone: nothing to clean up
        os._exit(0)
    # In the job: as `python -c ... worker_main()` would be started (Python reseeds `random` in a
    # forked process; numpy's global generator is seeded afresh here). Its parent is the starter:
    # were the starter gone already, worker_main sees another parent and ends the job.
    import numpy

    numpy.random.seed()
    sys.argv = ["-c", str(starter), *arguments]
    worker_main()


def _serve(channel: socket.socket) -> list[str] | None:
    """Fork a job for each request until the sweep closes the socket or goes (None); in a forked
    job, return its worker_main arguments."""
    running: set[int] = set()
    while True:
        try:
            while running:  # report every job that has ended
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                running.discard(pid)
                channel.send(json.dumps(["exited", pid, os.waitstatus_to_exitcode(status)]).encode())
            if not select.select([channel], [], [], POLL_SECONDS / 2)[0]:
                continue
            message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 2)
        except OSError:  # the sweep has gone
            return None
        if not message:
            return None
        number, arguments = json.loads(message)
        for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice (None: closed)
            if stream is not None:
                stream.flush()
        ready, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            channel.close()
            os.setsid()  # a session of its own, as each job, before the sweep learns its pid
            os.close(ready)
            os.close(ready_write)
            if fds:  # the job's output goes to the sweep's pipes, which forward it marked
                os.dup2(fds[0], 1)
                os.dup2(fds[1], 2)
            for fd in fds:
                os.close(fd)
            return arguments
        os.close(ready_write)
        os.read(ready, 1)  # end of file once the job has its session (or has died)
        os.close(ready)
        for fd in fds:
            os.close(fd)
        running.add(pid)
        try:
            channel.send(json.dumps(["started", number, pid]).encode())
        except OSError:  # the sweep has gone: so does this process, and the job with it
            return None


def worker_main() -> None:
    """One job: ``python -c ... PARENT_PID COMMON_FILE RETURN_FILE INDEX OVERRIDES_JSON``."""
    parent, common, return_file, index, overrides = sys.argv[1:6]
    die_with_parent(int(parent))
    threads = int(os.environ.get(THREADS_ENV, "0"))
    if threads:
        import torch

        torch.set_num_threads(threads)

    import cloudpickle
    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals

    from latentexp.launch import jobs

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
