"""The trainer's settings, declared once as a dataclass: each field's range and the words that
describe it are its metadata, checked by ``check`` before any work starts and quoted by every
message about the setting. The config layer registers the same dataclass as the ``trainer``
group's structured config (latentexp.config.trainer_schema), so OmegaConf enforces the types as
a config is composed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Optional, Union


def is_int(v: Any) -> bool:
    """An integer that is not a bool (validation's test of every integer setting too)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _setting(expected: str, ok: Callable[[Any], bool]) -> Any:
    return field(metadata={"expected": expected, "ok": ok})


def _flag() -> Any:
    return _setting("true or false", lambda v: isinstance(v, bool))


def _positive() -> Any:
    return _setting("a positive integer", lambda v: is_int(v) and v >= 1)


# OmegaConf reads these annotations at run time: Optional and Union, not `X | None` (it needs typing's).
@dataclass
class TrainerSettings:
    max_epochs: int = _positive()
    batch_size: int = _positive()
    early_stopping_patience: Optional[int] = _setting(  # noqa: UP045 - None: never stop early
        "null (no early stopping) or a non-negative integer", lambda v: v is None or (is_int(v) and v >= 0))
    sampler: str = _setting("random or m_per_class", lambda v: v in ("random", "m_per_class"))
    m_per_class: int = _positive()  # against the class count once the data is read (train.build)
    eval_batch_size: int = _positive()
    amp: bool = _flag()  # bf16 autocast of the model where the device computes bf16 natively
    channels_last: bool = _flag()
    compile: bool = _flag()
    progress: Union[bool, str] = _setting(  # noqa: UP007 - auto: bars when stderr is a terminal
        "auto, true or false", lambda v: v == "auto" or isinstance(v, bool))
    test_checkpoint: str = _setting(  # the weights the test evaluates
        "best (the best validation epoch's weights) or last (the last epoch's)",
        lambda v: v in ("best", "last"))
    gradient_diagnostics_every: int = _setting(  # probe every n-th batch (train/diagnostics.py); 0: off
        "a non-negative integer (0 turns the gradient diagnostics off)", lambda v: is_int(v) and v >= 0)

    @classmethod
    def from_config(cls, node: Any) -> TrainerSettings:
        return cls(**{k: node[k] for k in cls.__dataclass_fields__})


# Settings that change nothing while another setting has a given value: (setting, other, value).
INERT_WHILE = (("m_per_class", "sampler", "random"),)  # the random sampler never reads m


def inert_settings(flat: dict[str, Any]) -> set[str]:
    """The ``trainer.*`` keys of a flat config (``trainer.sampler``: ...) that change nothing in it."""
    return {f"trainer.{key}" for key, other, value in INERT_WHILE if flat.get(f"trainer.{other}") == value}


def expected(name: str) -> str:
    return next(f.metadata["expected"] for f in fields(TrainerSettings) if f.name == name)


def check(node: Any) -> str | None:
    """The first setting out of its range, as a message; None where all are in range."""
    for f in fields(TrainerSettings):
        value = node[f.name]
        if not f.metadata["ok"](value):
            return f"trainer.{f.name}={value!r} is invalid: expected {f.metadata['expected']}."
    return None


def no_such_setting(names: list[str]) -> str:
    settings = ", ".join(TrainerSettings.__dataclass_fields__)
    return f"trainer has no setting {', '.join(names)}; its settings: {settings}."
