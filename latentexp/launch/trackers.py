"""Trackers that watch a run from outside (the ``logger`` config group): TensorBoard and MLflow.

They receive every history.csv row after its epoch is checkpointed, and the final metrics. They
change nothing a run computes (``logger`` is outside the run identity), and they never stop or
slow it: a tracker that fails warns once and is switched off, and MLflow talks to its store from a
background thread. A resumed run continues the same TensorBoard directory and the same MLflow run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from latentexp.errors import ConfigError
from latentexp.runs.spec import flatten
from latentexp.train.callbacks import Callback, Callbacks, short_error

log = logging.getLogger("latentexp")

# Result fields logged as final metrics (numbers only; the rest of result.json is text or lists).
FINAL_METRICS = ("test_accuracy", "test_micro_f1", "test_macro_f1", "val_accuracy_best", "best_epoch",
                 "epochs_run", "epoch_seconds_mean", "train_seconds", "test_eval_seconds", "silhouette_test")
EXTRAS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}  # module, extra
# How long the end of a run waits for MLflow to take the last metrics (a dead store is off by then).
FLUSH_SECONDS = 60.0


def check_trackers(logger_config: dict | None) -> None:
    """Refuse an unknown tracker or one whose package is missing, before any work."""
    for name in logger_config or {}:
        if name not in EXTRAS:
            raise ConfigError(f"Unknown logger {name!r}. Valid choices: none, {', '.join(EXTRAS)} "
                              f"(several at once: logger=[tensorboard,mlflow]).")
        module, extra = EXTRAS[name]
        try:
            __import__(module)
        except ImportError:
            raise ConfigError(f"logger={name} needs the {module} package: pip install 'latentexp[{extra}]'"
                              f", or leave the logger out.") from None


def metrics_of(row: dict) -> dict[str, float]:
    """The numeric columns of a history row (``epoch`` is the step)."""
    return {k: float(v) for k, v in row.items() if k != "epoch" and isinstance(v, int | float)
            and not isinstance(v, bool)}


class TensorBoardTracker(Callback):
    """Scalars named after the history.csv columns, step = epoch; the final metrics as ``final/<key>``.
    Each session first marks every step as purged (``purge_step=1``) and then logs the whole
    history again, so readers see each epoch once, however often the run was killed and resumed."""

    name = "tensorboard"

    def __init__(self, directory: Path):
        self.directory = directory
        self.writer = None

    def start(self, history: list[dict]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.directory), purge_step=1)
        for row in history:
            self.log_epoch(row)

    def log_epoch(self, row: dict) -> None:
        for key, value in metrics_of(row).items():
            self.writer.add_scalar(key, value, global_step=int(row["epoch"]))
        self.writer.flush()

    def finish(self, result: dict) -> None:
        step = int(result.get("epochs_run") or 0)
        for key in FINAL_METRICS:
            if isinstance(result.get(key), int | float):
                self.writer.add_scalar(f"final/{key}", float(result[key]), global_step=step)
        self.writer.add_text("status", str(result.get("status")), global_step=step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _QuietWhileCalling(logging.Filter):
    """Drops MLflow's own log records while latentexp calls its store: a locked or unreachable
    store is then one warning of ours, not MLflow's tracebacks (66 lines for a locked SQLite file)
    before it. MLflow's records from anything else the process does pass."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "quiet", False)

    @contextlib.contextmanager
    def calling(self):
        self.local.quiet = True
        try:
            yield
        finally:
            self.local.quiet = False


_quiet = _QuietWhileCalling()


def _quiet_mlflow_handlers() -> None:
    import mlflow  # noqa: F401 - configures the "mlflow" logger's handler

    for handler in logging.getLogger("mlflow").handlers:
        if _quiet not in handler.filters:
            handler.addFilter(_quiet)


class MlflowTracker(Callback):
    """One MLflow run per latentexp run, found again on resume by the id kept in the checkpoint
    (or, if the run was killed before its first checkpoint, by its unfinished run with this hash).
    After the opening, every call to the store runs in a background thread, in order."""

    name = "mlflow"

    def __init__(self, tracking_uri: str, experiment: str, run_name: str, run_hash: str, params: dict):
        self.tracking_uri, self.experiment, self.params = tracking_uri, experiment, params
        self.run_name, self.run_hash = run_name, run_hash
        self.run_id: str | None = None
        self.logged_epochs = 0
        self.client = None
        self.jobs: queue.Queue = queue.Queue()
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="latentexp-mlflow", daemon=True)

    # The thread: one job after another; the first failure switches the tracker off.
    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            if self.failed is None:
                try:
                    with _quiet.calling():
                        job()
                except Exception as e:  # an unreachable or broken store: say so once, go on without it
                    self.failed = e
                    log.warning("mlflow: %s; the run goes on without MLflow", short_error(e))
            self.jobs.task_done()
        self.jobs.task_done()

    def _submit(self, job: Callable[[], None]) -> None:
        if self.failed is None and self.thread.is_alive():
            self.jobs.put(job)

    def start(self, history: list[dict]) -> None:
        # The run is opened before training starts (its id goes into the first checkpoint, and a
        # new store is whole before the first epoch can be killed); a store that cannot be reached
        # costs one attempt of at most MLFLOW_HTTP_REQUEST_TIMEOUT seconds, not MLflow's minutes
        # of retries. Everything after the opening runs in the background.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        self._open(history)
        self.thread.start()

    def _open(self, history: list[dict]) -> None:
        _quiet_mlflow_handlers()
        with _sqlite_store_lock(self.tracking_uri), _quiet.calling():  # one store created once
            self._open_run(history)

    def _open_run(self, history: list[dict]) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.client.search_experiments(max_results=1)  # a new SQLite store creates its tables here
        if self.run_id is not None and not self._exists(self.run_id):
            log.warning("mlflow: run %s of the checkpoint is not in %s; starting a new MLflow run",
                        self.run_id, self.tracking_uri)
            self.run_id = None
        experiment = self.client.get_experiment_by_name(self.experiment)
        if self.run_id is None and experiment is not None:
            self.run_id = self._unfinished_run(experiment.experiment_id)
        if self.run_id is None:
            experiment_id = experiment.experiment_id if experiment is not None else self._new_experiment()
            run = self.client.create_run(experiment_id, run_name=self.run_name,
                                         tags={"latentexp.run_name": self.run_name,
                                               "latentexp.hash": self.run_hash})
            self.run_id = run.info.run_id
            from mlflow.entities import Param

            params = [Param(k, v) for k, v in self.params.items()]  # immutable: logged once, at creation
            for first in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[first:first + 100])
        else:
            self.client.update_run(self.run_id, status="RUNNING")
        steps = [m.step for m in self.client.get_metric_history(self.run_id, "val_accuracy")]
        self.logged_epochs = max(steps, default=0)
        for row in history:
            self._log_row(row)

    def _exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException:
            return False

    def _new_experiment(self) -> str:
        try:
            return self.client.create_experiment(self.experiment)
        except Exception:  # another job of the sweep created it a moment ago
            return self.client.get_experiment_by_name(self.experiment).experiment_id

    def _unfinished_run(self, experiment_id: str) -> str | None:
        runs = self.client.search_runs([experiment_id], max_results=1,
                                       filter_string=f"tags.`latentexp.hash` = '{self.run_hash}' and "
                                                     f"attributes.status != 'FINISHED'")
        return runs[0].info.run_id if runs else None

    def _log_row(self, row: dict) -> None:
        """Log an epoch unless this MLflow run has it already (a resumed run logs each epoch once)."""
        epoch = int(row["epoch"])
        if epoch <= self.logged_epochs:
            return
        from mlflow.entities import Metric

        stamp = _millis()
        metrics = [Metric(k, v, stamp, epoch) for k, v in metrics_of(row).items()]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.logged_epochs = epoch

    def log_epoch(self, row: dict) -> None:
        self._submit(lambda: self._log_row(dict(row)))

    def finish(self, result: dict) -> None:
        def close_run() -> None:
            from mlflow.entities import Metric

            step, stamp = int(result.get("epochs_run") or 0), _millis()
            metrics = [Metric(k, float(result[k]), stamp, step) for k in FINAL_METRICS
                       if isinstance(result.get(k), int | float)]
            self.client.log_batch(self.run_id, metrics=metrics)
            finished = result.get("status") == "finished"
            if not finished:
                self.client.set_tag(self.run_id, "latentexp.reason", str(result.get("reason", ""))[:5000])
            self.client.set_terminated(self.run_id, "FINISHED" if finished else "FAILED")

        self._submit(close_run)

    def close(self) -> None:
        if not self.thread.is_alive():
            return
        self.jobs.put(None)
        self.thread.join(FLUSH_SECONDS)
        if self.thread.is_alive():
            log.warning("mlflow: the store took more than %.0f s; the last metrics may be missing",
                        FLUSH_SECONDS)

    def state_dict(self) -> dict:
        return {"run_id": self.run_id} if self.run_id else {}

    def load_state_dict(self, state: dict) -> None:
        self.run_id = state.get("run_id") or self.run_id


def build_trackers(logger_config: dict | None, config: dict, run_dir: Path, run_name: str, run_hash: str,
                   experiment: str | None) -> Callbacks:
    """The trackers ``logger`` names (checked by ``check_trackers`` when the config was validated).
    ``experiment`` names the MLflow experiment when the config does not (the preset's name, else
    the output root's folder)."""
    trackers: list[Callback] = []
    logger_config = logger_config or {}
    if "tensorboard" in logger_config:
        trackers.append(TensorBoardTracker(run_dir / (logger_config["tensorboard"] or {}).get("subdir",
                                                                                             "tensorboard")))
    if "mlflow" in logger_config:
        settings = logger_config["mlflow"] or {}
        root = Path(config["output_root"]).resolve()
        uri = settings.get("tracking_uri") or f"sqlite:///{root / 'mlflow.db'}"
        name = settings.get("experiment_name") or experiment or root.name
        # the resolved config as params: dotted keys, values as text (at most MLflow's 6000 characters)
        params = {key: str(value)[:6000] for key, value in flatten(config).items()}
        trackers.append(MlflowTracker(uri, name, run_name, run_hash, params))
    return Callbacks(trackers)


@contextlib.contextmanager
def _sqlite_store_lock(tracking_uri: str):
    """An exclusive flock beside a SQLite store while a job opens it: MLflow creates and migrates a
    new store's tables on first use, and two jobs doing that at once break it ("table already
    exists"). Other stores (servers, databases) take care of their own clients."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock = Path(tracking_uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _millis() -> int:
    return int(time.time() * 1000)
