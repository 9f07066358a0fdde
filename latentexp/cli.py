"""``latentexp`` console script: subcommands dispatch to Hydra apps or plain functions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from latentexp.errors import LatentexpError
from latentexp.identity import register_resolvers

USAGE = """usage: latentexp COMMAND [ARGS]

commands:
  train [OVERRIDES]   train one run, or a sweep with -m (Hydra overrides, e.g.
                      `latentexp train loss=latent_boost lambda=0.75`,
                      `latentexp train -m loss=magnet,latent_boost lambda=0.25,0.5 seed=0,1`)
                      `latentexp train --help` lists the config groups and options.
  analyze RUN_DIR...  cluster quality and t-SNE of a finished run's test latents (cached);
                      `latentexp analyze --help` for options.

Runs are written to outputs/runs/<dataset>-<model>-<loss>-lam<λ>-seed<seed>-<hash>/.
"""


def config_dir() -> str:
    """conf/ inside an installed wheel, else the source tree's top-level conf/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"latentexp's config tree was not found next to {here}; reinstall the package.")


register_resolvers()


def report_error(err: LatentexpError) -> None:
    """Print a user error as one paragraph and exit 2 (a traceback only with --debug)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("LATENTEXP_DEBUG") == "1":
        raise err
    print(f"latentexp: error: {err}", file=sys.stderr)
    sys.exit(2)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def train_app(cfg: DictConfig) -> float | None:
    from latentexp.train.run import run  # heavy imports only once Hydra has parsed the command line

    try:
        result = run(cfg, run_dir=HydraConfig.get().runtime.output_dir)
    except LatentexpError as err:
        report_error(err)
    return result.get("val_accuracy_best")  # the objective for Hydra sweepers


def train_command(args: list[str]) -> None:
    sys.argv = ["latentexp train", *args]  # Hydra reads the command line itself
    train_app()


def analyze_command(args: list[str]) -> None:
    from latentexp.analysis import main as analyze_main

    try:
        analyze_main(args)
    except LatentexpError as err:
        report_error(err)


COMMANDS = {"train": train_command, "analyze": analyze_command}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in argv:
        argv.remove("--debug")
        os.environ["LATENTEXP_DEBUG"] = "1"
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"latentexp: error: unknown command {command!r}; valid commands: "
              f"{', '.join(COMMANDS)}.\n\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    COMMANDS[command](rest)


if __name__ == "__main__":
    main()
