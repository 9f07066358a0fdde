"""What watches a run from outside the trainer (TensorBoard, MLflow, a researcher's own logger):
callbacks handed to the ``Trainer``, which change nothing a run computes. The trainer calls
``log_epoch`` with each epoch's history row once its checkpoint is written, and keeps each
callback's ``state_dict`` in that checkpoint; ``start`` (before the first epoch, with the epochs
a resumed run already has), ``finish`` (with the result) and ``close`` are its caller's, which
alone knows the result and when the run ends (latentexp.launch.training). Each callback is
guarded: the first exception of one warns once and switches it off, and the run goes on."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

log = logging.getLogger("latentexp")


class Callback:
    """One callback; override what it needs. ``state_dict`` goes into the run's checkpoint (e.g. the
    MLflow run to continue when the run resumes)."""

    name = "callback"

    def start(self, history: list[dict]) -> None:
        """Open (or reopen, on resume) and log the epochs already done."""

    def log_epoch(self, row: dict) -> None: ...

    def finish(self, result: dict) -> None: ...

    def close(self) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class Callbacks:
    """A run's callbacks, each guarded: the first exception of one warns and switches it off."""

    def __init__(self, callbacks: list[Callback] | None = None):
        self.callbacks = list(callbacks or [])

    def _each(self, method: str, *args: Any) -> None:
        for callback in list(self.callbacks):
            try:
                getattr(callback, method)(*args)
            except Exception as e:
                log.warning("%s: %s; the run goes on without it", callback.name, short_error(e))
                self.callbacks.remove(callback)
                with contextlib.suppress(Exception):
                    callback.close()

    def start(self, history: list[dict]) -> None:
        self._each("start", history)

    def log_epoch(self, row: dict) -> None:
        self._each("log_epoch", row)

    def finish(self, result: dict) -> None:
        self._each("finish", result)  # the run's own `finally` then closes (and flushes) them

    def close(self) -> None:
        self._each("close")

    def state_dict(self) -> dict:
        return {c.name: c.state_dict() for c in self.callbacks if c.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for callback in self.callbacks:
            callback.load_state_dict(state.get(callback.name, {}))


def short_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300] if text else ''}"
