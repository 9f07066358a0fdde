"""Synthetic data, configs, trainers and the console script, for every test file."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import sysconfig
from functools import cache
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from latentexp.config.tree import compose
from latentexp.data import DeviceData
from latentexp.launch.build import build_trainer
from latentexp.runs.rundir import RunDir
from latentexp.runs.spec import RunSpec
from latentexp.train.trainer import Trainer

REPO_ROOT = Path(__file__).resolve().parents[2]

# Small and quiet: the trainer settings every synthetic trainer starts from.
TRAINER_OVERRIDES = ("trainer.max_epochs=50", "trainer.batch_size=32", "trainer.eval_batch_size=64",
                     "trainer.progress=false")


def synthetic_data(n=200, classes=4, size=8, seed=0, learnable=True, channels=1) -> DeviceData:
    """uint8 images split 50/25/25 into train/val/test. Learnable: each class lights its own row,
    so any working model beats chance (1/classes) quickly; else the labels are shuffled."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randint(0, 100, (n, channels, size, size), generator=g, dtype=torch.uint8)
    if learnable:
        x[torch.arange(n), :, y, :] = 255  # a bright row per class
    else:
        y = y[torch.randperm(n, generator=g)]
    split = lambda a: (a[: n // 2], a[n // 2 : 3 * n // 4], a[3 * n // 4 :])  # noqa: E731
    (tx, vx, sx), (ty, vy, sy) = split(x), split(y)
    return DeviceData(tx, ty, vx, vy, sx, sy, torch.zeros(1, 1, 1, 1), torch.full((1, 1, 1, 1), 0.5),
                      classes, "synthetic")


@cache
def composed(overrides: tuple[str, ...]) -> DictConfig:
    """The real config tree composed with ``overrides`` (cached: composing takes ~0.1 s)."""
    return compose(list(overrides))


def make_spec(*overrides: str) -> RunSpec:
    return RunSpec.from_config(composed(tuple(overrides)), resolve_data=False)  # synthetic data


def make_trainer(data: DeviceData, *overrides: str, loss="latent_boost", lam=0.5, seed=0, model="cnn",
                 run_dir: Path | None = None, **trainer):
    """A CPU trainer of the composed config (``overrides`` win), on ``data``; ``trainer`` are
    trainer settings (``max_epochs=5``); ``run_dir`` gets its checkpoint and history."""
    settings = [f"trainer.{k}={'null' if v is None else str(v).lower() if isinstance(v, bool) else v}"
                for k, v in trainer.items()]
    spec = make_spec(f"loss={loss}", f"lambda={lam}", f"seed={seed}", f"model={model}", *TRAINER_OVERRIDES,
                     *settings, *overrides)
    return build_trainer(spec, data, torch.device("cpu"), RunDir(run_dir) if run_dir else None)


class Killed(Exception):
    """The process dying, right after a checkpoint."""


def kill_after_checkpoint(trainer: Trainer, monkeypatch, epoch: int) -> None:
    """Train ``trainer`` until the checkpoint of ``epoch`` is written, then die there."""
    original_save = Trainer.save

    def save_then_die(self):
        original_save(self)
        if self.epoch == epoch:
            raise Killed

    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(Killed):
        trainer.fit()
    monkeypatch.setattr(Trainer, "save", original_save)


def assert_same_run(straight: Trainer, resumed: Trainer) -> None:
    """A resumed run equals the uninterrupted one: history (but the seconds), model and loss
    weights and buffers, and the optimizer's state, exactly."""
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(resumed.history) == strip(straight.history)
    for part in ("model", "loss"):
        a, b = getattr(straight, part).state_dict(), getattr(resumed, part).state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), (part, key)
    a, b = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert a.keys() == b.keys()
    for index in a:
        for key, value in a[index].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[index][key])), (index, key)


# The cores this test process may use before a test worker keeps to one of them (conftest.py).
MACHINE_CORES = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()


def keep_to_one_core(worker: int) -> None:
    """A test worker computes on a core of its own (one per core: pytest-xdist's -n auto), so a
    sweep run in it sees one core and runs its jobs in its own process, as on a 1-core machine."""
    if MACHINE_CORES:
        os.sched_setaffinity(0, {sorted(MACHINE_CORES)[worker % len(MACHINE_CORES)]})


def every_core() -> None:
    """For a `latentexp` subprocess (its preexec_fn): the machine's cores again, so that what only
    a process shows (the default launcher's jobs, thread counts, kills) is shown as a user sees it."""
    if MACHINE_CORES:
        os.sched_setaffinity(0, MACHINE_CORES)


@contextlib.contextmanager
def computing_on(threads: int):
    """This test process on ``threads`` torch threads over the machine's cores, as a `latentexp`
    process of its own computes (a test worker keeps to one core and one thread)."""
    affinity = os.sched_getaffinity(0) if MACHINE_CORES else None
    before = torch.get_num_threads()
    every_core()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if affinity is not None:
            os.sched_setaffinity(0, affinity)


def latentexp(args, env, cwd, timeout=300) -> subprocess.CompletedProcess:
    """The command line of this checkout (python -m latentexp), whatever `latentexp` is on PATH."""
    return subprocess.run([sys.executable, "-m", "latentexp", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=every_core)


def cli_environment(data_root: Path) -> dict:
    """Environment for `latentexp` subprocesses: the test data, no GPU, this checkout's package, and
    the console scripts of the interpreter that runs the tests first on PATH (`.venv/bin/python -m
    pytest` with the environment not active finds `.venv/bin/latentexp`, not another install's)."""
    env = {**os.environ, "LATENTEXP_DATA": str(data_root), "CUDA_VISIBLE_DEVICES": ""}
    env["PATH"] = os.pathsep.join(filter(None, [sysconfig.get_path("scripts"), os.environ.get("PATH")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def result_files(root: Path) -> list[Path]:
    return sorted(root.glob("runs/*/result.json"))


def load_script(name: str):
    """``scripts/<name>.py`` as a module (developer tools live outside the installed package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"scripts_{name}", REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli(*argv: str) -> int:
    """``latentexp ARGV`` in this process (no interpreter start-up, no torch import); its exit code.
    Subprocesses are for what only a process shows: signals, kills, the console script."""
    from latentexp.cli import main

    try:
        main(list(argv))
    except SystemExit as stop:
        return 0 if stop.code is None else stop.code
    return 0


# Appended to a script that uses latentexp's core alone: fails it if anything above the core, or
# Hydra or OmegaConf, was imported (docs/architecture.md).
NOTHING_ABOVE_THE_CORE = (
    "\nimport sys as _sys\n"
    "_up = sorted(m for m in _sys.modules if m.split('.')[0] in ('hydra', 'omegaconf') or "
    "m.startswith(('latentexp.config', 'latentexp.runs', 'latentexp.launch', 'latentexp.report')))\n"
    "assert not _up, _up\n")
