"""Training: the ``Trainer`` is the one training loop, on plain objects (a model, a loss, an
optimizer, a schedule, the data on the device); ``latentexp.launch.training.run(cfg)`` builds them
from a config and trains one run to result.json.

Its names are imported when first asked for: ``latentexp.train.settings`` (the trainer's settings,
which the config layer registers and the report reads) then costs no torch import."""

__all__ = ["Callback", "Callbacks", "Trainer", "TrainingDiverged", "TrainingFailed"]


def __getattr__(name: str):
    if name in ("Callback", "Callbacks"):
        from latentexp.train import callbacks

        return getattr(callbacks, name)
    if name in __all__:
        from latentexp.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'latentexp.train' has no attribute {name!r}")
