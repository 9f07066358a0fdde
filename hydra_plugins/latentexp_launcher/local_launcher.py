"""``hydra/launcher=local``: the config Hydra composes and the Launcher class it finds here (Hydra
looks for plugins in the hydra_plugins package only). The work is in latentexp.launch.launcher."""

from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.launcher import Launcher


@dataclass
class LocalLauncherConf:
    _target_: str = "hydra_plugins.latentexp_launcher.local_launcher.LocalLauncher"
    # Jobs at once; null: one per GPU where CUDA is, else one per CPU core.
    n_jobs: Optional[int] = None  # noqa: UP045 - OmegaConf reads the annotation, and needs Optional
    # CPU threads of each job; null: the cores shared among the jobs that run at once.
    threads_per_job: Optional[int] = None  # noqa: UP045


ConfigStore.instance().store(group="hydra/launcher", name="local", node=LocalLauncherConf,
                             provider="latentexp")


class LocalLauncher(Launcher):
    def __init__(self, n_jobs: int | None = None, threads_per_job: int | None = None) -> None:
        self.n_jobs, self.threads_per_job = n_jobs, threads_per_job
        self.config = self.task_function = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(self, job_overrides, initial_job_idx):
        from latentexp.launch.launcher import launch

        return launch(self, job_overrides, initial_job_idx)
