"""User-facing errors: one paragraph that says what is wrong and what to do."""


class LatentexpError(Exception):
    """An error caused by input the user can fix (config, data, paths).

    The CLI prints its message alone, without a traceback, and exits with code 2.
    """


class ConfigError(LatentexpError):
    """A config value is missing, of the wrong type or out of range."""


class DataError(LatentexpError):
    """A dataset is missing, truncated or malformed."""
