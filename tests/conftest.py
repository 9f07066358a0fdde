from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

sys.path.insert(0, str(Path(__file__).parent))

from dataset_files import write_cifar10, write_cifar100, write_fashion_mnist  # noqa: E402

from latentexp.cli import config_dir  # noqa: E402
from latentexp.identity import register_resolvers  # noqa: E402

register_resolvers()

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A data root holding small Fashion-MNIST (IDX), CIFAR-10 and CIFAR-100 files."""
    root = tmp_path_factory.mktemp("data")
    write_fashion_mnist(root / "fashion_mnist", n_train=600, n_test=200)
    write_cifar10(root)
    write_cifar100(root, n_train=400, n_test=100)
    return root


@pytest.fixture
def compose_cfg(tmp_path, data_root):
    """Compose the real config tree with overrides, pointed at the test data and tmp outputs."""

    def _compose(*overrides: str):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose(
                config_name="config",
                overrides=[f"dataset.root={data_root}", f"output_root={tmp_path / 'outputs'}",
                           "device=cpu", "dataset.download=false", *overrides],
            )

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture
def cli_env(data_root) -> dict:
    """Environment for `latentexp` subprocesses: test data, no GPU."""
    env = {**os.environ, "LATENTEXP_DATA": str(data_root), "CUDA_VISIBLE_DEVICES": ""}
    # This checkout's package, whatever checkout an editable install or PATH points at.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env.pop("HYDRA_FULL_ERROR", None)
    return env
