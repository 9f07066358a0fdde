"""Training: ``run(cfg)`` trains one run from its config to result.json; the ``Trainer`` is the one
training loop."""

from latentexp.train.run import run
from latentexp.train.trainer import Trainer, TrainingDiverged, TrainingFailed

__all__ = ["Trainer", "TrainingDiverged", "TrainingFailed", "run"]
