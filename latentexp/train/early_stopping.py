"""Early stopping on validation accuracy (the paper: patience 20)."""

from __future__ import annotations

import math


class EarlyStopping:
    """Tracks the best validation accuracy; ``patience=None`` never stops."""

    def __init__(self, patience: int | None):
        self.patience = patience
        self.best = -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record one epoch's validation accuracy; True when it is a new best."""
        if value > self.best:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """After ``patience`` epochs in a row without a better value; an epoch that improved never
        stops training, so patience 0 stops at the first epoch that does not improve (as 1 does)."""
        return self.patience is not None and self.bad_epochs > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
