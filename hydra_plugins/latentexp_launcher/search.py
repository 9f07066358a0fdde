"""``hydra/sweeper=optuna`` as `latentexp train` runs it (cli.OPTUNA_SETTINGS names this class):
Hydra's Optuna sweeper, with a search whose every trial failed said in one paragraph, exit 1,
where Optuna would end it with ``ValueError: No trials are completed yet`` and Hydra's traceback."""

import logging
import sys
from typing import List  # noqa: UP035 - the base class's signature

# Optuna's storage imports alembic, which announces each of its plugins at INFO: seven lines of
# "setup plugin alembic..." before every search, with nothing to act on.
logging.getLogger("alembic").setLevel(logging.WARNING)

try:
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the search extra is not installed: there is nothing to wrap
    OptunaSweeper = None

EVERY_TRIAL_FAILED = 1  # the exit code of a search without one finished trial

if OptunaSweeper is not None:

    class OptunaSearch(OptunaSweeper):
        def sweep(self, arguments: List[str]) -> None:  # noqa: UP006
            try:
                return super().sweep(arguments)
            except ValueError as err:
                if "No trials are completed" not in str(err):
                    raise
            print("latentexp: error: every trial of the search failed, so it has no best value. Each "
                  "trial's reason is printed above it (a value latentexp refused, or a run that failed); "
                  "fix it and run the same command again: the finished runs are kept and the study "
                  "proposes the same trials (its sampler is seeded).", file=sys.stderr)
            raise SystemExit(EVERY_TRIAL_FAILED)
