"""A job of `latentexp train`, resolved once: composed, validated and its RunSpec built, then found
again by whatever runs it (the run-name resolver, the sweeper, the launcher and its workers, the
task function) instead of being composed, validated or specified again.

`latentexp train` resolves every job of its command line before the first one starts
(``plan``). A job nothing planned (a trial a search proposes as it goes, a job of another config
directory) is resolved the first time it is asked for, and that answer is kept too. A job is
found by its overrides as Hydra names them (``hydra.overrides.task``), and is a job of this
process's command only: ``plan`` forgets every other.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from omegaconf import DictConfig

from latentexp.errors import LatentexpError
from latentexp.runs.spec import RunSpec


@dataclasses.dataclass(frozen=True)
class Job:
    overrides: tuple[str, ...]  # as Hydra's sweeper hands them to its launcher
    config: DictConfig  # composed once, Hydra's node included
    spec: RunSpec  # built once, after validation

    def at(self, run_dir: str | Path) -> RunSpec:
        """The spec with the directory Hydra gave the job (hydra.run.dir / hydra.sweep.subdir)."""
        return dataclasses.replace(self.spec, run_dir=Path(run_dir))


# This process's jobs by their overrides: a Job, or the error that refused it.
_jobs: dict[tuple[str, ...], Job | LatentexpError] = {}


def _key(overrides) -> tuple[str, ...]:
    return tuple(str(o) for o in overrides)


def overrides_of(cfg: DictConfig) -> tuple[str, ...]:
    """A composed job's key: its overrides as Hydra records them (Hydra's node needed)."""
    return _key(cfg.hydra.overrides.task)


def _specified(cfg: DictConfig, overrides, fetch_data: bool = True) -> Job:
    return Job(overrides=_key(overrides), config=cfg, spec=RunSpec.from_config(cfg, fetch_data=fetch_data))


def resolve(cfg: DictConfig, overrides) -> Job:
    """Validate a composed job and build its spec: the one time for it."""
    from latentexp.launch.validation import validate_config

    validate_config(cfg)
    return _specified(cfg, overrides)


def plan(configs: list[DictConfig], fetch_data: bool = True) -> list[Job]:
    """Resolve every job of a command (Hydra's node included), the first refusal raised, and
    forget any other job. ``fetch_data=False`` (a --dry-run): a missing dataset is refused, never
    downloaded."""
    from latentexp.launch.validation import validate_config

    _jobs.clear()
    for cfg in configs:  # every value first, then the data each job reads (its fingerprint)
        validate_config(cfg)
    jobs = [_specified(cfg, overrides_of(cfg), fetch_data) for cfg in configs]
    _jobs.update({job.overrides: job for job in jobs})
    return jobs


def planned(overrides) -> Job | None:
    """The planned job of these overrides, if one is (a refused one is not)."""
    found = _jobs.get(_key(overrides))
    return found if isinstance(found, Job) else None


def find(overrides, cfg: DictConfig) -> Job:
    """The job of these overrides: the planned one, else ``cfg`` resolved now and kept, refusal
    included, so that asking again costs nothing."""
    overrides = _key(overrides)
    found = _jobs.get(overrides)
    if found is None:
        try:
            found = resolve(cfg, overrides)
        except LatentexpError as err:
            found = err
        _jobs[overrides] = found
    if isinstance(found, LatentexpError):
        raise found
    return found


def state() -> dict:
    """The planned jobs, for a worker process of the local launcher (``install``)."""
    return dict(_jobs)


def install(jobs: dict) -> None:
    _jobs.clear()
    _jobs.update(jobs)


def _run_name_resolver(*, _root_: DictConfig) -> str:
    # Hydra asks for the run directory before the job starts, and asks the job it has: a planned
    # one answers at once. A config `latentexp train` could not check (another config directory)
    # may be invalid, and the job itself then says how: name a placeholder, never raise here.
    try:
        return find(overrides_of(_root_), _root_).spec.name
    except Exception:  # noqa: BLE001
        return "invalid-config"


def register_resolvers() -> None:
    """Make ``${latentexp_run_name:}`` available to the Hydra configs (conf/config.yaml's run dirs)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("latentexp_run_name"):
        OmegaConf.register_new_resolver("latentexp_run_name", _run_name_resolver)
