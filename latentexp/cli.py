"""``latentexp`` console script: subcommands dispatch to Hydra apps or plain functions."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from latentexp.config.tree import config_dir, config_groups
from latentexp.errors import ConfigError, LatentexpError
from latentexp.launch.jobs import register_resolvers
from latentexp.launch.launcher import LOCAL_LAUNCHER, check_settings, jobs_at_once
from latentexp.printable import escape_log_records, printable

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


if not OmegaConf.has_resolver("latentexp_jobs_at_once"):  # OPTUNA_SETTINGS' trials at a time
    OmegaConf.register_new_resolver("latentexp_jobs_at_once", jobs_at_once)


def report_error(err: LatentexpError) -> None:
    """Print a user error as one paragraph and exit 2 (a traceback only with --debug)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("LATENTEXP_DEBUG") == "1":
        raise err
    print(printable(f"latentexp: error: {err}", keep="\n"), file=sys.stderr)  # it may quote names from disk
    sys.exit(2)


def train_job(cfg: DictConfig) -> float | None:
    """Hydra's task function: the run of one job, resolved once (latentexp.launch.jobs)."""
    # the training stack, imported only once Hydra has parsed the command line
    from hydra.types import RunMode

    from latentexp.launch import jobs
    from latentexp.launch.training import run_spec

    hydra_config = HydraConfig.get()
    job_dir = Path(hydra_config.runtime.output_dir)
    try:
        job = jobs.find(hydra_config.overrides.task, cfg)
        result = run_spec(job.at(job_dir), requested_loss=cfg.loss.name)
    except LatentexpError as err:
        _remove_hydra_record(job_dir)
        if is_search(hydra_config):
            # A trial a search proposed and latentexp refused (λ out of range, say): a failed trial,
            # which the sweeper records as such before it goes on (an exit would end the study).
            print(f"latentexp: error: {err} (this trial failed; the search goes on)", file=sys.stderr)
            raise TrialFailed(str(err)) from None
        report_error(err)
    if result.get("status") == "failed" and is_search(hydra_config):
        raise TrialFailed(f"run {job_dir.name} failed: {result.get('reason')}")
    if result.get("status") == "failed" and hydra_config.mode == RunMode.RUN:
        # A single run that failed exits 1, so that a script or a SLURM job can tell; a sweep goes on.
        print(f"latentexp: run {job_dir.name} failed: {result.get('reason')}", file=sys.stderr)
        sys.exit(1)
    return result.get("val_accuracy_best")  # the objective for Hydra sweepers


train_app = hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(train_job)


def run_planned(job) -> None:
    """A single run (no -m) as Hydra's run mode runs it, of the config `latentexp train` composed:
    the same run directory, .hydra/ record, log and callbacks, without composing it again."""
    from hydra.core.utils import configure_log, run_job, setup_globals
    from hydra.types import HydraContext, RunMode
    from omegaconf import open_dict

    from latentexp.config.hydra_internals import run_context

    setup_globals()
    cfg = job.config
    with open_dict(cfg.hydra):
        cfg.hydra.mode = RunMode.RUN
    configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
    HydraConfig.instance().set_config(cfg)
    loader, callbacks = run_context(cfg, config_dir())
    callbacks.on_run_start(config=cfg, config_name="config")
    ret = run_job(hydra_context=HydraContext(config_loader=loader, callbacks=callbacks),
                  task_function=train_job, config=cfg, job_dir_key="hydra.run.dir", job_subdir_key=None)
    callbacks.on_run_end(config=cfg, config_name="config", job_return=ret)
    _ = ret.return_value  # the task's own exception, raised here


class TrialFailed(RuntimeError):
    """A search's trial that latentexp refused or whose run failed: Hydra records it as the job's
    failure, and the sweeper tells the study."""


PLANNED_SWEEPER = "hydra/sweeper=latentexp"


def is_search(hydra_config) -> bool:
    """A sweep whose jobs a sweeper proposes as it goes (Optuna, say), not a grid known up front:
    neither Hydra's basic sweeper nor latentexp's (the basic one without composing again the jobs
    latentexp.launch.jobs planned)."""
    from hydra.types import RunMode

    from latentexp.config.hydra_internals import BASIC_SWEEPER

    grids = (BASIC_SWEEPER, "hydra_plugins.latentexp_launcher.planned_sweeper.PlannedSweeper")
    return hydra_config.mode == RunMode.MULTIRUN and hydra_config.sweeper.get("_target_") not in grids


def _remove_hydra_record(job_dir: Path) -> None:
    """A job refused before its run started (missing data, no such device) leaves nothing behind:
    remove the directory Hydra made for it if it holds only Hydra's record of the job."""
    hydra_files = {".hydra", f"{HydraConfig.get().job.name}.log"}
    if job_dir.is_dir() and {p.name for p in job_dir.iterdir()} <= hydra_files:
        shutil.rmtree(job_dir, ignore_errors=True)


def _override_key(arg: str) -> str:
    return arg.lstrip("+~").split("=", 1)[0]


def check_number_sizes(args: list[str]) -> None:
    """A number too long for Python to read (``trainer.batch_size=`` and 10,000 digits) is said as
    such, before Hydra's parser stops on it with a traceback."""
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()  # 0: no limit (or Python < 3.10.7)
    for arg in args if limit else ():
        key, _, value = arg.partition("=")
        digits = max((len(run) for run in re.findall(r"\d+", value)), default=0)
        if digits > limit:
            raise ConfigError(f"{_override_key(key)}= holds a number of {digits} digits, more than Python "
                              f"reads ({limit}); no setting takes such a number: give a value in its range "
                              f"(`latentexp train --cfg job` shows the values).")


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
        # a list selects several options at once (logger=[tensorboard,mlflow])
        chosen = [v for value in values for v in (value if isinstance(value, list) else [value])]
        for value in chosen:
            if value is not None and str(value) not in groups[group]:
                raise ConfigError(f"{group}={value} is not an option of the {group} group; valid options: "
                                  f"{', '.join(groups[group])} (the files in conf/{group}/).")


def check_every_job(args: list[str], dry_run: bool) -> list | None:
    """Compose, validate and specify every job of the command once (latentexp.launch.jobs) before Hydra
    starts any, so that a bad value anywhere in a sweep stops it before its first job, with exit 2
    and nothing written; and check that each output root can be written. Returns the jobs; None
    where the command is left to Hydra (its own flags, another config directory, another sweeper)."""
    from latentexp.config.hydra_internals import args_parser
    from latentexp.launch import jobs
    from latentexp.launch.sweeps import job_configs
    from latentexp.runs.rundir import check_output_root

    jobs.plan([])  # this command's jobs only
    if "--version" in args:
        return None
    try:
        parsed = args_parser().parse_args(args)
    except SystemExit:
        return None  # Hydra reports its own command-line errors
    if any((parsed.help, parsed.hydra_help, parsed.cfg, parsed.info, parsed.shell_completion,
            parsed.config_path, parsed.config_dir, parsed.config_name, parsed.experimental_rerun)):
        return None
    if is_search_command(parsed.overrides):
        check_search(parsed.overrides, dry_run)
        return None
    configs = job_configs(parsed.overrides, multirun=parsed.multirun, with_hydra=True)
    planned = jobs.plan(configs, fetch_data=not dry_run)
    if parsed.multirun:
        launcher = configs[0].hydra.launcher  # one for the whole sweep (hydra.* is never swept)
        if launcher.get("_target_") == LOCAL_LAUNCHER:
            check_settings(launcher.n_jobs, launcher.threads_per_job)
    if not dry_run:
        for root in sorted({str(job.spec.config["output_root"]) for job in planned}):
            check_output_root(Path(root))
        for job in planned:  # before Hydra writes its record of the job into another run's directory
            run_dir = _hydra_job_dir(job.config, parsed.multirun)
            if run_dir is not None:
                job.at(run_dir).files.check_holds(job.spec.name, job.spec.hash)
    return planned


def _hydra_job_dir(cfg: DictConfig, multirun: bool) -> Path | None:
    """The directory Hydra will give a job, where it can be told before Hydra runs it (None where it
    names Hydra's runtime values, such as ``${hydra.job.num}``: run_spec checks it then)."""
    try:
        if multirun:
            return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        return Path(str(cfg.hydra.run.dir))
    except Exception:  # noqa: BLE001 - any interpolation Hydra alone resolves
        return None


# Overrides that hand the jobs to another sweeper (a search proposes them as it goes).
SEARCH_KEYS = ("hydra/sweeper", "hparams_search")


def is_search_command(args: list[str]) -> bool:
    """Whether the command hands its jobs to another sweeper than latentexp's own."""
    return any(_override_key(a) in SEARCH_KEYS and a != PLANNED_SWEEPER for a in args if "=" in a)


def check_search(overrides: list[str], dry_run: bool) -> None:
    """What can be checked of a search before its first trial: the config without the searched
    values (its data found, or named) and the output root. The sampled values are each trial's to
    check: a refused trial fails alone."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from latentexp.launch.sweeps import job_configs
    from latentexp.launch.validation import validate_config
    from latentexp.runs.rundir import check_output_root
    from latentexp.runs.spec import RunSpec

    fixed = [o.input_line for o in OverridesParser.create().parse_overrides(overrides)
             if not o.is_sweep_override() and not o.input_line.startswith(("hydra", "+hydra", "~hydra"))
             and _override_key(o.input_line) not in SEARCH_KEYS]
    (cfg,) = job_configs(fixed, multirun=False)
    validate_config(cfg)
    RunSpec.from_config(cfg, fetch_data=not dry_run)  # a --dry-run reads and fetches no data
    if not dry_run:
        check_output_root(Path(str(cfg.output_root)))


# Hydra's Optuna sweeper as latentexp sets it up (docs/sweeps.md, "Searching λ"): it maximises what a job
# returns (the run's best validation accuracy), a failed trial never ends the study, TPE is seeded by
# the seed (the same command proposes the same trials: a killed search resumes), and it asks as many
# trials at a time as the launcher runs at once. A value given on the command line wins.
OPTUNA_SETTINGS = {
    # Hydra's sweeper, with a search whose every trial failed said in one paragraph
    "hydra.sweeper._target_": "hydra_plugins.latentexp_launcher.search.OptunaSearch",
    "hydra.sweeper.direction": "maximize",
    "hydra.sweeper.max_failure_rate": "1.0",
    "hydra.sweeper.sampler.seed": "${seed}",
    "hydra.sweeper.n_jobs": "'${latentexp_jobs_at_once:${oc.select:hydra.launcher.n_jobs,null}}'",
}


def with_search_settings(args: list[str]) -> list[str]:
    """``args`` with OPTUNA_SETTINGS added where the command searches with Optuna (hydra/sweeper=optuna,
    or an hparams_search preset: each of them uses it)."""
    keys = {_override_key(a): a.split("=", 1)[-1] for a in args if "=" in a}
    if keys.get("hydra/sweeper") != "optuna" and "hparams_search" not in keys:
        return args
    where = next(i for i, a in enumerate(args) if _override_key(a) in SEARCH_KEYS) + 1
    unseeded = keys.get("hydra/sweeper/sampler") == "grid"  # the one sampler without a seed
    added = [f"{k}={v}" for k, v in OPTUNA_SETTINGS.items()
             if k not in keys and not (unseeded and k.endswith(".seed"))]
    return [*args[:where], *added, *args[where:]]  # beside an override: Hydra's flags stay apart


def train_command(args: list[str]) -> None:
    dry_run = "--dry-run" in args
    args = with_planned_sweeper(with_search_settings([a for a in args if a != "--dry-run"]))
    try:
        check_number_sizes(args)
        check_group_choices(args)
        jobs = check_every_job(args, dry_run)
        if dry_run:
            refused = [a for a in args if _override_key(a) in ("hydra.sweep.dir", "hydra.sweep.subdir",
                                                               "hydra.run.dir")]
            if refused:
                raise ConfigError(f"--dry-run lists runs under output_root/runs/ and cannot follow "
                                  f"{', '.join(refused)}; set output_root=DIR instead (runs then live in "
                                  f"DIR/runs/<name>/).")
            if jobs is None:
                raise ConfigError("--dry-run lists the jobs of Hydra's basic sweeper in latentexp's config "
                                  "tree; drop --dry-run with Hydra's own flags, another config directory or "
                                  "another sweeper.")
            plan(jobs)
            return
    except LatentexpError as err:
        report_error(err)
    if jobs is not None and not _is_multirun(args):
        run_planned(jobs[0])
        return
    sys.argv = ["latentexp train", *args]  # Hydra reads the command line itself
    train_app()


def _is_multirun(args: list[str]) -> bool:
    return "-m" in args or "--multirun" in args


def with_planned_sweeper(args: list[str]) -> list[str]:
    """``args`` with latentexp's sweeper for a grid sweep (-m without a search or a sweeper of the
    user's): Hydra's basic one, which then launches the planned jobs without composing them again."""
    if not _is_multirun(args) or is_search_command(args):
        return args
    return [*args, PLANNED_SWEEPER]


def plan(jobs: list) -> list[dict]:
    """The dry run: each job's run directory and how far that run got, without writing anything
    (the jobs are the ones `latentexp train` launches: composed as Hydra's basic sweeper composes
    them, whatever the launcher)."""
    rows: list[dict] = []
    first: dict = {}
    for index, job in enumerate(jobs):
        spec = job.spec
        state = spec.files.state() if spec.run_dir not in first else f"same run as #{first[spec.run_dir]}"
        first.setdefault(spec.run_dir, index)
        rows.append({"index": index, "run_dir": spec.run_dir, "state": state})
        print(f"#{index:<4d} {spec.name}  {state}")
    states = [row["state"] for row in rows if not row["state"].startswith("same run")]
    counts = {s: sum(1 for x in states if x.split(" ")[0] == s)
              for s in ("finished", "failed", "running", "resumable", "started", "new")}
    running = f"{counts['running']} running in another job, " if counts["running"] else ""
    print(f"{len(rows)} jobs, {len(states)} distinct runs: {counts['finished']} finished, "
          f"{counts['failed']} failed, {running}{counts['resumable'] + counts['started']} to resume, "
          f"{counts['new']} new.")
    to_train = [job.spec for job, row in zip(jobs, rows, strict=True)
                if row["state"].split(" ")[0] in ("new", "resumable", "started")]
    for line in time_estimate(to_train, jobs[0].config if jobs else None):
        print(line)
    return rows


def time_estimate(specs: list, config) -> list[str]:
    """How long the runs still to train may take: each at the mean wall time of the finished runs
    of its dataset and model under the same output root (the epochs early stopping left them and
    the machine they ran on), divided among the jobs the local launcher runs at once. Lines that
    say so where no finished run can stand for a kind of run."""
    from latentexp.launch.launcher import jobs_at_once
    from latentexp.runs.status import finished_seconds

    if not specs:
        return []
    kinds: dict[tuple, list] = {}
    for spec in specs:
        kinds.setdefault((str(spec.config["output_root"]), spec.dataset, spec.model), []).append(spec)
    total, lines, unknown = 0.0, [], []
    finished = {root: finished_seconds(Path(root)) for root, _, _ in kinds}  # each root read once
    for (root, dataset, model), group in kinds.items():
        seconds = finished[root].get((dataset, model))
        if not seconds:
            unknown.append((len(group), dataset, model))
            continue
        mean = sum(seconds) / len(seconds)
        total += mean * len(group)
        lines.append(f"  {len(group)} run(s) of {model} on {dataset} at the mean of the {len(seconds)} "
                     f"finished under {root}: {_hours(mean)} each")
    launcher = config.hydra.launcher if config is not None and "hydra" in config else {}
    at_once = jobs_at_once(launcher.get("n_jobs")) if launcher.get("_target_") == LOCAL_LAUNCHER else 1
    at_once = max(1, min(at_once, len(specs)))
    head = (f"time: about {_hours(total)} of training, {_hours(total / at_once)} with {at_once} job(s) at "
            f"once" if total else "time: no estimate")
    tail = [f"  {n} run(s) of {model} on {dataset}: no finished one under the output root to estimate from "
            f"(`latentexp bench --models {model}` prints the epoch time of a paper-sized epoch)"
            for n, dataset, model in unknown]
    return [head, *lines, *tail]


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def analyze_command(args: list[str]) -> None:
    from latentexp.report.analysis import main as analyze_main

    _run_reporting_errors(analyze_main, args, "analyze")


def report_command(args: list[str]) -> None:
    from latentexp.report.command import main as report_main

    _run_reporting_errors(report_main, args, "report")


def status_command(args: list[str]) -> None:
    from latentexp.runs.status import main as status_main

    _run_reporting_errors(status_main, args, "status")


def bench_command(args: list[str]) -> None:
    from latentexp.bench.command import main as bench_main

    _run_reporting_errors(bench_main, args, "bench")


# What to do when a command cannot write where it writes.
WRITE_ADVICE = {
    "report": "give `latentexp report` a directory you can write with --out DIR (it also caches t-SNE "
              "embeddings in the run directories when it can; --no-tsne skips them)",
    "analyze": "copy the run directory somewhere you can write",
    "status": "status writes nothing; check the path",
    "bench": "bench writes nothing but its output; check where that goes",
}


def _run_reporting_errors(command, args: list[str], name: str) -> None:
    try:
        command(args)
    except LatentexpError as err:
        report_error(err)
    except (PermissionError, NotADirectoryError, FileExistsError, IsADirectoryError) as err:
        report_error(LatentexpError(f"cannot write {err.filename} ({err.strerror}); {WRITE_ADVICE[name]}."))
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            report_error(LatentexpError(
                f"cannot write {err.filename or 'its output'}: the disk is full ({err.strerror}). Free some "
                f"space and run the command again, or {WRITE_ADVICE[name]} on another disk; the files it "
                f"wrote before are intact (each is written whole or not at all)."))
        if err.errno != errno.EROFS:
            raise
        report_error(LatentexpError(f"cannot write {err.filename} ({err.strerror}); {WRITE_ADVICE[name]}."))


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
    escape_log_records(logging.getLogger("latentexp"))  # what it logs may quote names from disk
    # multiprocessing's resource tracker (a process of its own, started by parallel launchers with
    # this process's -W options) warns of "leaked semaphore objects" after a Ctrl-C, as it removes
    # them itself: nothing is lost, and the interrupted line below says what to do.
    if "ignore:resource_tracker:UserWarning" not in sys.warnoptions:
        sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    if command not in COMMANDS:
        print(f"latentexp: error: unknown command {command!r}; valid commands: "
              f"{', '.join(COMMANDS)}.\n\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    try:
        COMMANDS[command](rest)
    except KeyboardInterrupt:
        print("\nlatentexp: interrupted. Run the same command again to go on: finished runs are kept and an "
              "unfinished one resumes from its last complete epoch.", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `latentexp status outputs | head -1`: the reader has gone, say no more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


if __name__ == "__main__":
    main()
