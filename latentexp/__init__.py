"""latentexp: a config-driven experiment runner for latent-space-shaping classification losses."""

__version__ = "0.3.0"

__all__ = ["load_history", "load_runs"]


def __getattr__(name: str):
    # Imported when first asked for: `import latentexp` (every command's start) stays free of pandas.
    if name in __all__:
        from latentexp.report import results

        return getattr(results, name)
    raise AttributeError(f"module 'latentexp' has no attribute {name!r}")
