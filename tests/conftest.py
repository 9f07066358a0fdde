from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# The data fingerprints' digest cache: the suite's own (its subprocesses inherit it), never ~/.cache.
os.environ["LATENTEXP_CACHE"] = tempfile.mkdtemp(prefix="latentexp-cache-")
atexit.register(shutil.rmtree, os.environ["LATENTEXP_CACHE"], ignore_errors=True)  # one per test process
# The two test workers share the cores: the OpenMP threads of a `latentexp` process a test starts
# wait for work asleep instead of spinning on a core the other worker computes on (the threads, and
# so the numbers, are the same).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from support.datasets import write_cifar10, write_cifar100, write_fashion_mnist  # noqa: E402
from support.helpers import cli_environment  # noqa: E402

from latentexp.config.tree import compose  # noqa: E402
from latentexp.launch.jobs import register_resolvers  # noqa: E402

register_resolvers()

if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker per core: each computes on its own core
    import torch  # noqa: E402
    from support.helpers import keep_to_one_core  # noqa: E402

    torch.set_num_threads(1)
    keep_to_one_core(int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw")))

if os.environ.get("LATENTEXP_TEST_NO_BF16"):  # the in-process suite as a CPU without native bf16 runs it
    import torch  # noqa: E402

    torch.cpu._is_avx512_bf16_supported = torch.cpu._is_amx_tile_supported = lambda: False


@pytest.fixture(autouse=True)
def hydra_logging_stays_in_its_test():
    """Hydra configures logging when a test runs `latentexp train` in this process (a dry run even
    disables every existing logger), and keeps its job config: put both back afterwards, as the end
    of a process would."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    for logger in logging.root.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False
    # Hydra's job config outlives main() in this process: a later run() would take its choices
    # (its experiment names the MLflow experiment) as a new process never would.
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().cfg = None


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A data root holding small Fashion-MNIST (IDX), CIFAR-10 and CIFAR-100 files."""
    root = tmp_path_factory.mktemp("data")
    write_fashion_mnist(root / "fashion_mnist", n_train=600, n_test=200)
    write_cifar10(root)
    write_cifar100(root, n_train=400, n_test=100)
    return root


@pytest.fixture(scope="session")
def hand_written_runs(tmp_path_factory) -> Path:
    """support.runs.hand_written_sweep, written once (composing its 21 configs takes seconds):
    read it, or copy it (``written_sweep``) to change it."""
    from support.runs import hand_written_sweep

    return hand_written_sweep(tmp_path_factory.mktemp("hand_written") / "outputs")


@pytest.fixture
def written_sweep(hand_written_runs, tmp_path) -> Path:
    """A copy of the hand-written sweep of this test's own (a run tree can move)."""
    import shutil

    return Path(shutil.copytree(hand_written_runs, tmp_path / "outputs"))


@pytest.fixture
def compose_cfg(tmp_path, data_root):
    """Compose the real config tree with overrides, pointed at the test data and tmp outputs."""

    def _compose(*overrides: str):
        return compose([f"dataset.root={data_root}", f"output_root={tmp_path / 'outputs'}", "device=cpu",
                        "dataset.download=false", *overrides])

    return _compose


@pytest.fixture
def here(tmp_path, monkeypatch, data_root):
    """For ``support.helpers.cli``: this test's tmp dir as the working directory, the test data."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LATENTEXP_DATA", str(data_root))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    return tmp_path


@pytest.fixture
def cli_env(data_root) -> dict:
    """Environment for `latentexp` subprocesses: test data, no GPU."""
    return cli_environment(data_root)


def pytest_collection_modifyitems(config, items):
    """The ``slow`` tests first: the workers take the long ones early and share the short ones at the
    end, instead of one worker starting a minute-long test while the other runs out of work.
    ``cuda``-marked tests need a CUDA GPU: skipped, with the reason, where there is none."""
    import torch

    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order kept
    _skip_slurm_without_a_cluster(items)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none here); on a GPU machine: pytest -m cuda")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


def _skip_slurm_without_a_cluster(items) -> None:
    """``slurm``-marked tests need a scheduler that answers: skipped where none does, unless
    LATENTEXP_REQUIRE_SLURM=1 (CI), where they run and fail, so that CI never passes them unseen."""
    import os
    import subprocess

    wanted = any(item.get_closest_marker("slurm") for item in items)
    if not wanted or os.environ.get("LATENTEXP_REQUIRE_SLURM"):
        return
    try:
        up = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
        answered = up.returncode == 0 and up.stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        answered = False
    if answered:
        return
    skip = pytest.mark.skip(reason="no SLURM cluster answers here: scripts/slurm_local.sh start")
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(skip)
