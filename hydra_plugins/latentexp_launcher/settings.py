"""Hydra finds plugins in the hydra_plugins package, for every app and composition: here the
structured config of latentexp's trainer group (``trainer/schema``) joins Hydra's ConfigStore."""

from latentexp.config.trainer_schema import register

register()
