"""A task that submitit starts on SLURM trains on the CPUs the task was given."""

import pytest
import torch

from latentexp.runtime import use_scheduler_threads


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("env,expected", [
    ({"SUBMITIT_EXECUTOR": "slurm", "SLURM_CPUS_PER_TASK": "3"}, 3),
    ({"SUBMITIT_EXECUTOR": "slurm", "SLURM_CPUS_PER_TASK": "3", "OMP_NUM_THREADS": "1"}, None),  # yours win
    ({"SUBMITIT_EXECUTOR": "local", "SLURM_CPUS_PER_TASK": "3"}, None),  # not a SLURM task
    ({"SLURM_CPUS_PER_TASK": "3"}, None),  # an salloc shell: latentexp's own launcher decides
    ({"SUBMITIT_EXECUTOR": "slurm"}, None),  # no CPUs asked for
])
def test_a_slurm_task_takes_its_cpus_as_threads(monkeypatch, threads, env, expected):
    for name in ("SUBMITIT_EXECUTOR", "SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    torch.set_num_threads(1)
    assert use_scheduler_threads() == expected
    assert torch.get_num_threads() == (expected or 1)
