"""``latentexp`` console script: subcommands dispatch to Hydra apps or plain functions."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from latentexp.config_tree import config_dir, config_groups
from latentexp.errors import ConfigError, LatentexpError
from latentexp.spec import register_resolvers

USAGE = """usage: latentexp COMMAND [ARGS]

commands:
  train [OVERRIDES]   train one run, or a sweep with -m (Hydra overrides, e.g.
                      `latentexp train loss=latent_boost lambda=0.75`,
                      `latentexp train -m loss=magnet,latent_boost lambda=0.25,0.5 seed=0,1`,
                      `latentexp train -m experiment=paper_table2_fashion_mnist`)
                      `latentexp train --help` lists the config groups and options;
                      --dry-run lists the runs a command would launch and their state.
  analyze RUN_DIR...  cluster quality and t-SNE of a finished run's test latents (cached);
                      `latentexp analyze --help` for options.
  report PATH...      the paper's tables (Markdown, LaTeX, CSV) and figures from the runs under
                      PATH, e.g. `latentexp report outputs`; `latentexp report --help`.
  status PATH...      every run under PATH: failed, running, resumable, started or finished.
  bench [--quick]     trainer vs a minimal PyTorch loop, each loss vs cross-entropy, test
                      evaluation and PCA timings; `latentexp bench --help`.

Runs are written to outputs/runs/<dataset>-<model>-<loss>-lam<λ>-seed<seed>-<hash>/
(every λ = 0 run is the cross-entropy baseline `...-ce-lam0-...`).
"""


register_resolvers()


def report_error(err: LatentexpError) -> None:
    """Print a user error as one paragraph and exit 2 (a traceback only with --debug)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("LATENTEXP_DEBUG") == "1":
        raise err
    print(f"latentexp: error: {err}", file=sys.stderr)
    sys.exit(2)


# Filled with one entry per Hydra job when `--dry-run` lists a command's runs instead of training.
_dry_run_plan: list[dict] | None = None


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def train_app(cfg: DictConfig) -> float | None:
    from latentexp.train.run import run  # heavy imports only once Hydra has parsed the command line

    if _dry_run_plan is not None or os.environ.get(DRY_RUN_ENV) == "1":
        return _plan(cfg)
    try:
        result = run(cfg, run_dir=HydraConfig.get().runtime.output_dir)
    except LatentexpError as err:
        report_error(err)
    return result.get("val_accuracy_best")  # the objective for Hydra sweepers


def _plan(cfg: DictConfig) -> None:
    """One job of a dry run: where its run lives and how far it got; nothing is written."""
    from latentexp.spec import RunSpec
    from latentexp.validation import validate_config

    try:
        validate_config(cfg)
    except LatentexpError as err:
        report_error(err)
    plan = _dry_run_plan if _dry_run_plan is not None else []  # [] in a launcher's own process
    spec = RunSpec.from_config(cfg)
    index = len(plan)
    first = next((p["index"] for p in plan if p["run_dir"] == spec.run_dir), None)
    state = spec.files.state() if first is None else f"same run as #{first}"
    plan.append({"index": index, "run_dir": spec.run_dir, "state": state})
    print(f"#{index:<4d} {spec.name}  {state}")


DRY_RUN_ENV = "LATENTEXP_DRY_RUN"
# The run directory of a dry run is output_root/runs/<name>; Hydra's own dirs are sent to scratch.
DRY_RUN_REFUSED = ("hydra.sweep.dir", "hydra.sweep.subdir", "hydra.run.dir")


def _override_key(arg: str) -> str:
    return arg.lstrip("+~").split("=", 1)[0]


def check_group_choices(args: list[str]) -> None:
    """Refuse an unknown option of a config group (``loss=latent_boots``) before Hydra composes,
    with the valid options, as a ConfigError (exit 2). Anything this check cannot judge (globs,
    other config directories or search paths, syntax it cannot parse) is left to Hydra."""
    import fnmatch

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType
    from hydra.errors import HydraException

    if any(a.startswith(("--config-dir", "-cd", "--config-path", "-cp")) or "hydra.searchpath" in a
           for a in args):
        return  # options may come from elsewhere
    groups = config_groups()
    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-") or "=" not in arg or _override_key(arg) not in groups:
            continue
        try:
            (override,) = parser.parse_overrides([arg])
            group = override.key_or_group
            if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
                glob = override.value()
                values = [o for o in groups[group] if any(fnmatch.fnmatch(o, g) for g in glob.include)]
                if not values:
                    raise ConfigError(f"{arg} matches no option of the {group} group; valid options: "
                                      f"{', '.join(groups[group])} (the files in conf/{group}/).")
                continue
            sweep = override.is_sweep_override()
            values = list(override.sweep_string_iterator()) if sweep else [override.value()]
        except HydraException:
            continue  # Hydra reports its own syntax errors
        for value in values:
            if value is not None and str(value) not in groups[group]:
                raise ConfigError(f"{group}={value} is not an option of the {group} group; valid options: "
                                  f"{', '.join(groups[group])} (the files in conf/{group}/).")


def train_command(args: list[str]) -> None:
    global _dry_run_plan
    try:
        check_group_choices(args)
    except ConfigError as err:
        report_error(err)
    dry_run = "--dry-run" in args
    if dry_run:
        args = [a for a in args if a != "--dry-run"]
        refused = [a for a in args if _override_key(a) in DRY_RUN_REFUSED]
        if refused:
            report_error(ConfigError(
                f"--dry-run lists runs under output_root/runs/ and cannot follow {', '.join(refused)}; "
                f"set output_root=DIR instead (runs then live in DIR/runs/<name>/)."))
        # Jobs run in this process with the basic launcher (never a cluster submission), and Hydra's
        # own files go to a scratch directory: the listing touches nothing under the output root.
        _dry_run_plan = []
        os.environ[DRY_RUN_ENV] = "1"  # a job in another process would still only plan
        scratch = tempfile.mkdtemp(prefix="latentexp-dry-run-")
        args = [a for a in args if not _override_key(a).startswith(("hydra/launcher", "hydra.launcher"))]
        args += [f"hydra.sweep.dir={scratch}", f"hydra.run.dir={scratch}/run", "hydra.output_subdir=null",
                 "hydra/launcher=basic", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    sys.argv = ["latentexp train", *args]  # Hydra reads the command line itself
    try:
        train_app()
    finally:
        if dry_run:
            shutil.rmtree(scratch, ignore_errors=True)
            os.environ.pop(DRY_RUN_ENV, None)
            plan, _dry_run_plan = _dry_run_plan, None  # a later call in this process trains again
    if dry_run:
        _print_plan_summary(plan)


def _print_plan_summary(plan: list[dict]) -> None:
    states = [p["state"] for p in plan if not p["state"].startswith("same run")]
    counts = {s: sum(1 for x in states if x.split(" ")[0] == s)
              for s in ("finished", "failed", "running", "resumable", "started", "new")}
    running = f"{counts['running']} running in another job, " if counts["running"] else ""
    print(f"{len(plan)} jobs, {len(states)} distinct runs: {counts['finished']} finished, "
          f"{counts['failed']} failed, {running}{counts['resumable'] + counts['started']} to resume, "
          f"{counts['new']} new.")


def analyze_command(args: list[str]) -> None:
    from latentexp.analysis import main as analyze_main

    _run_reporting_errors(analyze_main, args)


def report_command(args: list[str]) -> None:
    from latentexp.report import main as report_main

    _run_reporting_errors(report_main, args)


def status_command(args: list[str]) -> None:
    from latentexp.status import main as status_main

    _run_reporting_errors(status_main, args)


def bench_command(args: list[str]) -> None:
    from latentexp.bench import main as bench_main

    _run_reporting_errors(bench_main, args)


def _run_reporting_errors(command, args: list[str]) -> None:
    try:
        command(args)
    except LatentexpError as err:
        report_error(err)


COMMANDS = {"train": train_command, "analyze": analyze_command, "report": report_command,
            "status": status_command, "bench": bench_command}


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
