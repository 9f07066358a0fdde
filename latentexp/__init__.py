"""latentexp: a config-driven experiment runner for latent-space-shaping classification losses."""

__version__ = "0.2.0"
