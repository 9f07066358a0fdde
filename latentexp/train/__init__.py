"""Training: the ``Trainer`` is the one training loop, on plain objects (a model, a loss, an
optimizer, a schedule, the data on the device); ``latentexp.launch.training.run(cfg)`` builds them
from a config and trains one run to result.json."""

from latentexp.train.callbacks import Callback, Callbacks
from latentexp.train.trainer import Trainer, TrainingDiverged, TrainingFailed

__all__ = ["Callback", "Callbacks", "Trainer", "TrainingDiverged", "TrainingFailed"]
