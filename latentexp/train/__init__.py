from latentexp.train.early_stopping import EarlyStopping
from latentexp.train.run import run
from latentexp.train.trainer import Trainer, TrainingDiverged

__all__ = ["EarlyStopping", "Trainer", "TrainingDiverged", "run"]
