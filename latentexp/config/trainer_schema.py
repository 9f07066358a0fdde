"""The trainer's settings as the ``trainer`` config group's structured config: Hydra's ConfigStore
holds ``trainer_schema`` (the dataclass of latentexp.train.settings), which
conf/trainer/default.yaml extends, so OmegaConf enforces each field's type as the config is
composed (``trainer.max_epochs=2`` is an int, ``abc`` is refused)."""

from __future__ import annotations

from latentexp.train.settings import TrainerSettings, expected, no_such_setting

# At the root, not in the trainer group, which --help lists as choices; conf/trainer/default.yaml extends it.
SCHEMA = "trainer_schema"


def register() -> None:
    """Put the schema in Hydra's ConfigStore (Hydra's plugin discovery does it for every Hydra app
    and composition: hydra_plugins/latentexp_launcher/settings.py)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA, node=TrainerSettings, provider="latentexp")


def composition_error(err: Exception) -> str | None:
    """What OmegaConf's refusal of a trainer setting as the config was composed (a type that does
    not fit, a key the trainer has not) says in latentexp's words; None for any other error."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    full_key = str(getattr(err, "full_key", "") or "")
    group, _, name = full_key.partition(".")
    if group != "trainer" or not name:
        return None
    if isinstance(err, (ConfigAttributeError, ConfigKeyError)):
        return no_such_setting([name])
    if isinstance(err, ValidationError) and name in TrainerSettings.__dataclass_fields__:
        return f"{full_key}={err.value!r} is invalid: expected {expected(name)}."
    return None
