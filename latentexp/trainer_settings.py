"""The trainer's settings: the ``trainer`` config group (conf/trainer/default.yaml), typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainerSettings:
    max_epochs: int
    batch_size: int
    early_stopping_patience: int | None  # None: never stop early
    sampler: str  # random | m_per_class
    m_per_class: int
    eval_batch_size: int
    amp: bool  # bf16 autocast of the model where the device computes bf16 natively
    channels_last: bool
    compile: bool
    progress: bool | str  # auto: bars when stderr is a terminal
    gradient_diagnostics_every: int  # probe every n-th batch (train/diagnostics.py); 0: off

    @classmethod
    def from_config(cls, node: Any) -> TrainerSettings:
        return cls(**{k: node[k] for k in cls.__dataclass_fields__})
