"""Hydra's side of latentexp's local launcher; the work is in latentexp.launch.launcher."""
