"""``hydra/sweeper=latentexp`` (the default of `latentexp train -m`): Hydra's basic sweeper, which
composes each job of a batch once more to check it before launching, except for the jobs that
`latentexp train` has already composed and validated (latentexp.launch.jobs): those it launches as they
are. A job nothing planned is checked as the basic sweeper checks it."""

from dataclasses import dataclass
from typing import Any, Dict, Optional  # noqa: UP035 - OmegaConf reads the annotations

from hydra.core.config_store import ConfigStore

from latentexp.config.hydra_internals import basic_sweeper


@dataclass
class PlannedSweeperConf:
    _target_: str = "hydra_plugins.latentexp_launcher.planned_sweeper.PlannedSweeper"
    # The basic sweeper's settings, with the same meaning.
    max_batch_size: Optional[int] = None  # noqa: UP045 - OmegaConf reads the annotation, and needs Optional
    params: Optional[Dict[str, str]] = None  # noqa: UP006, UP045


ConfigStore.instance().store(group="hydra/sweeper", name="latentexp", node=PlannedSweeperConf,
                             provider="latentexp")


class PlannedSweeper(basic_sweeper()):
    def validate_batch_is_legal(self, batch: Any) -> None:
        from latentexp.launch.jobs import planned

        unplanned = [overrides for overrides in batch if planned(overrides) is None]
        if unplanned:
            super().validate_batch_is_legal(unplanned)
