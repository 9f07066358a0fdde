"""TensorBoard and MLflow (the logger group), read back with their own readers and compared
with history.csv and result.json: one run, a sweep, a kill and resume, a tracker that fails, a
missing package, and the run identity and results they must not touch."""

import csv
import json
import logging
import math
import sys

import pytest
from support.helpers import cli, latentexp, result_files

from latentexp.cli import main
from latentexp.errors import ConfigError
from latentexp.launch.trackers import MlflowTracker
from latentexp.launch.training import run
from latentexp.launch.validation import validate_config
from latentexp.runs.spec import RunSpec

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

TINY = ("dataset.limit_train=200", "dataset.limit_test=60", "trainer.batch_size=32")
BOTH = "logger=[tensorboard,mlflow]"


def history_columns(run_dir) -> dict[str, list[tuple[int, float]]]:
    """Each numeric history.csv column as (epoch, value) pairs."""
    with open(run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, text in row.items():
            if key != "epoch" and text not in ("", None):
                columns.setdefault(key, []).append((int(row["epoch"]), float(text)))
    return columns


def tensorboard_scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def mlflow_runs(root):
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    return client, experiments, client.search_runs([e.experiment_id for e in experiments])


def same_series(ours, theirs, rel=0.0):
    assert [step for step, _ in ours] == [step for step, _ in theirs]
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        both_nan = math.isnan(a) and math.isnan(b)
        assert both_nan or a == pytest.approx(b, rel=rel, abs=rel * 1e-6), (ours, theirs)


def check_trackers_equal_the_files(run_dir, root, mlflow_run, client):
    history = history_columns(run_dir)
    result = json.loads((run_dir / "result.json").read_text())
    scalars = tensorboard_scalars(run_dir)
    for key, series in history.items():
        same_series(scalars[key], series, rel=1e-6)  # event files hold float32
        logged = [(m.step, m.value) for m in client.get_metric_history(mlflow_run.info.run_id, key)]
        same_series(sorted(logged), series)  # MLflow keeps float64: exactly the file's numbers
    for key in ("test_accuracy", "test_micro_f1", "silhouette_test", "best_epoch"):
        assert scalars[f"final/{key}"] == [(result["epochs_run"], pytest.approx(result[key], rel=1e-6))]
        assert mlflow_run.data.metrics[key] == result[key]
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags["latentexp.run_name"] == run_dir.name == mlflow_run.info.run_name
    assert mlflow_run.data.tags["latentexp.hash"] == result["spec"]["hash"]
    assert mlflow_run.data.params["loss.name"] == result["spec"]["loss"]
    config = result["spec"]["config"]
    assert mlflow_run.data.params["trainer.max_epochs"] == str(config["trainer"]["max_epochs"])


@pytest.mark.slow
def test_one_run_leaves_event_files_and_an_mlflow_run_equal_to_its_files(compose_cfg, tmp_path):
    result = run(compose_cfg("loss=latent_boost", "lambda=0.5", "trainer.max_epochs=3", BOTH, *TINY))
    run_dir = tmp_path / "outputs" / "runs" / result["spec"]["name"]
    client, experiments, runs = mlflow_runs(tmp_path / "outputs")
    assert [e.name for e in experiments] == ["outputs"] and len(runs) == 1
    check_trackers_equal_the_files(run_dir, tmp_path / "outputs", runs[0], client)
    assert {"alpha", "beta", "pca_components", "grad_cosine"} <= set(tensorboard_scalars(run_dir))


@pytest.mark.slow
def test_the_logger_changes_neither_the_run_identity_nor_its_numbers(compose_cfg, tmp_path):
    plain = compose_cfg("loss=magnet", "trainer.max_epochs=2", *TINY)
    watched = compose_cfg("loss=magnet", "trainer.max_epochs=2", BOTH, *TINY)
    assert RunSpec.from_config(plain).name == RunSpec.from_config(watched).name
    first = run(plain)
    history = (tmp_path / "outputs" / "runs" / first["spec"]["name"] / "history.csv").read_text()
    (tmp_path / "outputs" / "runs" / first["spec"]["name"]).rename(tmp_path / "plain")
    second = run(watched)
    for key in ("test_accuracy", "val_accuracy_best", "silhouette_test", "best_epoch"):
        assert first[key] == second[key]
    rows = [line.split(",")[:-1] for line in history.splitlines()]  # every column but the seconds
    again = (tmp_path / "outputs" / "runs" / second["spec"]["name"] / "history.csv").read_text()
    assert rows == [line.split(",")[:-1] for line in again.splitlines()]


@pytest.mark.slow
def test_the_issues_sweep_puts_every_run_in_one_experiment(tmp_path, data_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LATENTEXP_DATA", str(data_root))
    # Two jobs side by side whatever the machine: they open one new SQLite store at once.
    main(["train", "-m", "loss=magnet,latent_boost", "lambda=0.5", BOTH, "seed=0", "trainer.max_epochs=1",
          "hydra.launcher.n_jobs=2", "device=cpu", *TINY])
    root = tmp_path / "outputs"
    client, experiments, runs = mlflow_runs(root)
    assert len(result_files(root)) == 2 and len(experiments) == 1 and len(runs) == 2
    by_name = {r.info.run_name: r for r in runs}
    for result in result_files(root):
        check_trackers_equal_the_files(result.parent, root, by_name[result.parent.name], client)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["checkpoint.pt:2", "history.csv:2"])
def test_a_killed_run_resumes_into_the_same_trackers_without_repeating_an_epoch(here, cli_env, fault, capfd):
    """checkpoint.pt:2 kills the run while it writes epoch 2's checkpoint (epoch 1 was logged);
    history.csv:2 kills it after epoch 2's checkpoint and before any tracker saw epoch 2. The kill
    needs a process; the resume runs in this one."""
    args = ["train", "loss=latent_boost", "trainer.max_epochs=3", BOTH, "device=cpu", *TINY]
    killed = latentexp(args, {**cli_env, "LATENTEXP_FAULT": fault}, here)
    assert killed.returncode == -9, killed.stderr[-2000:]
    root = here / "outputs"
    _, _, runs = mlflow_runs(root)
    assert len(runs) == 1 and runs[0].info.status == "RUNNING"
    capfd.readouterr()
    assert cli(*args) == 0
    resumed = capfd.readouterr()
    assert "resuming from" in resumed.out + resumed.err
    client, _, runs = mlflow_runs(root)
    (result,) = result_files(root)
    assert len(runs) == 1  # the same MLflow run, continued
    check_trackers_equal_the_files(result.parent, root, runs[0], client)


@pytest.mark.slow
def test_an_mlflow_run_killed_before_its_first_checkpoint_is_found_again_by_its_hash(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rows = [{"epoch": 1, "val_accuracy": 50.0}, {"epoch": 2, "val_accuracy": 60.0}]
    first = MlflowTracker(uri, "sweep", "run-a", "aaaa", {"loss.name": "ce"})
    first.start([])
    first.log_epoch(rows[0])
    first.close()  # killed: never finished, and no checkpoint kept its id
    other = MlflowTracker(uri, "sweep", "run-b", "bbbb", {})
    other.start([])
    other.close()
    again = MlflowTracker(uri, "sweep", "run-a", "aaaa", {"loss.name": "ce"})
    again.start(rows)  # the resumed run's history: epoch 1 is there already, epoch 2 is new
    again.finish({"status": "finished", "epochs_run": 2, "test_accuracy": 55.0})
    again.close()
    assert again.run_id == first.run_id != other.run_id
    client = MlflowClient(uri)
    assert [(m.step, m.value) for m in client.get_metric_history(first.run_id, "val_accuracy")] == \
        [(1, 50.0), (2, 60.0)]
    assert client.get_run(first.run_id).info.status == "FINISHED"
    stale = MlflowTracker(uri, "sweep", "run-c", "cccc", {})
    stale.load_state_dict({"run_id": "0" * 32})  # a checkpoint from another store
    stale.start([])
    stale.close()
    assert stale.run_id not in (None, "0" * 32)


def test_a_store_that_breaks_mid_run_is_one_warning_without_mlflows_own_tracebacks(tmp_path, capfd, caplog):
    """MLflow logs a failed store call itself, with tracebacks (66 lines for a SQLite store locked by
    another process, which takes MLflow's fixed 20 s busy timeout to fail): only our warning shows.
    A store whose tables went away fails the same way at once."""
    import sqlite3

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "sweep", "run-a", "aaaa", {"loss.name": "ce"})
    tracker.start([])
    tracker.log_epoch({"epoch": 1, "val_accuracy": 50.0})
    tracker.jobs.join()
    capfd.readouterr()
    with sqlite3.connect(tmp_path / "mlflow.db") as store:
        store.execute("DROP TABLE metrics")
        store.execute("DROP TABLE latest_metrics")
    with caplog.at_level(logging.WARNING, logger="latentexp"):
        tracker.log_epoch({"epoch": 2, "val_accuracy": 60.0})
        tracker.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "mlflow.store" not in err, err[:3000]
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mlflow:")]
    assert len(warnings) == 1 and "the run goes on without MLflow" in warnings[0], warnings


def test_a_tracker_that_fails_warns_once_and_the_run_goes_on(compose_cfg, tmp_path, caplog):
    unreachable = "logger.mlflow.tracking_uri=http://127.0.0.1:9"  # nothing listens on port 9
    with caplog.at_level(logging.WARNING, logger="latentexp"):
        result = run(compose_cfg("loss=magnet", "trainer.max_epochs=2", BOTH, unreachable, *TINY))
    assert result["status"] == "finished"
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mlflow:")]
    assert len(warnings) == 1 and "the run goes on without" in warnings[0]
    run_dir = tmp_path / "outputs" / "runs" / result["spec"]["name"]
    assert tensorboard_scalars(run_dir)["val_accuracy"]  # the other tracker still logged


@pytest.mark.slow
def test_a_store_that_breaks_mid_run_warns_once_and_the_run_goes_on(compose_cfg, monkeypatch, caplog):
    calls, log_batch = [], MlflowClient.log_batch

    def broken(self, run_id, metrics=(), params=(), **kwargs):
        if not metrics:  # the run's opening (its params) still works
            return log_batch(self, run_id, metrics=metrics, params=params, **kwargs)
        calls.append(run_id)
        raise RuntimeError("the store went away")

    monkeypatch.setattr(MlflowClient, "log_batch", broken)
    with caplog.at_level(logging.WARNING, logger="latentexp"):
        result = run(compose_cfg("loss=ce", "trainer.max_epochs=3", "logger=mlflow", *TINY))
    assert result["status"] == "finished" and result["epochs_run"] == 3
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mlflow:")]
    assert warnings == ["mlflow: RuntimeError: the store went away; the run goes on without MLflow"]
    assert len(calls) == 1  # switched off after the first failure: no call per epoch after it


def test_a_missing_package_is_named_before_any_work(compose_cfg, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'latentexp\[mlflow\]'"):
        validate_config(compose_cfg("logger=mlflow"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "logger=[tensorboard,mlflow]", "device=cpu"])
    assert exit_.value.code == 2 and "latentexp[mlflow]" in capsys.readouterr().err
    assert not (tmp_path / "outputs").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["train", "logger=wandb", "device=cpu"])
    assert exit_.value.code == 2 and "valid options: mlflow, none, tensorboard" in capsys.readouterr().err
