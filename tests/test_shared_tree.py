"""`latentexp status` and `report` on a shared tree: names shown escaped, planted files (FIFOs,
devices, huge or damaged files) reported per run instead of hanging or stopping the command, runs
of one name told apart, counts in words."""

import contextlib
import json
import os
import signal

import pytest
from support.helpers import cli
from support.runs import finished, run_config, write_run

from latentexp.errors import DataError
from latentexp.io import read_json
from latentexp.runs.status import run_states


@contextlib.contextmanager
def within(seconds: int):
    """Fail instead of hanging the suite where a read would block."""
    def stop(*_):
        raise TimeoutError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_run_name_with_terminal_escapes_is_printed_escaped(tmp_path, capsys):
    run_dir = finished(tmp_path, "ce", 0.0, 0, 88.0, 88.0)
    planted = run_dir.with_name("x\x1b]0;owned\x07\x1b[2J\rname")
    run_dir.rename(planted)
    assert cli("status", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "x\\x1b]0;owned\\x07\\x1b[2J\\rname" in out


@pytest.mark.parametrize("planted", ["fifo", "dev_zero", "huge", "null_fields"])
def test_a_planted_result_file_is_reported_and_the_other_runs_still_listed(tmp_path, capsys, planted):
    finished(tmp_path, "ce", 0.0, 0, 88.0, 88.0)
    victim = finished(tmp_path, "ce", 0.0, 1, 89.0, 89.0)
    result = victim / "result.json"
    content = read_json(result)
    result.unlink()
    if planted == "fifo":
        os.mkfifo(result)
    elif planted == "dev_zero":
        result.symlink_to("/dev/zero")
    elif planted == "huge":
        with open(result, "wb") as f:  # sparse: no disk used
            f.truncate(65 * 2**20)
    else:
        result.write_text(json.dumps({**content, "test_accuracy": None, "epochs_run": None}))
    with within(30):
        assert cli("status", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "Traceback" not in out and "2 runs" in out and "test 88.00 %" in out
    if planted == "null_fields":
        assert "test accuracy missing" in out
    else:
        assert "unreadable" in out and str(result) in out
        expected = {"fifo": "not a regular file", "dev_zero": "a symbolic link", "huge": "more than the"}
        assert expected[planted] in out


def test_a_fifo_for_a_history_or_a_lock_does_not_hang_status(tmp_path, capsys):
    started = write_run(tmp_path, run_config("magnet", 0.5, 0), status="started")
    (started / "checkpoint.pt").write_bytes(b"x")
    os.mkfifo(started / "history.csv")
    os.mkfifo(started / "run.lock")
    with within(30):
        assert cli("status", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "unreadable" in out and "history.csv" in out


def test_runs_of_one_name_are_told_apart_by_the_settings_that_differ(tmp_path, capsys):
    finished(tmp_path, "ce", 0.0, 0, 88.0, 88.0, epochs=1, max_epochs=100)
    finished(tmp_path, "ce", 0.0, 0, 87.0, 87.0, epochs=30, max_epochs=50)
    finished(tmp_path, "ce", 0.0, 1, 86.0, 86.0, epochs=30)  # alone under its name: nothing added
    rows = {row["detail"]: row for row in run_states([tmp_path])}
    assert rows["test 88.00 %, 1 epoch"]["differs"] == "trainer.max_epochs=100"
    assert rows["test 87.00 %, 30 epochs"]["differs"] == "trainer.max_epochs=50"
    assert "differs" not in rows["test 86.00 %, 30 epochs"]
    assert cli("status", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "1 epoch  [trainer.max_epochs=100]" in out and "\n[...]: runs that share a name" in out


def test_of_many_runs_of_one_name_each_shows_where_it_departs_from_most(tmp_path):
    finished(tmp_path, "latent_boost", 0.5, 0, 88.0, 88.0)
    finished(tmp_path, "latent_boost", 0.5, 0, 87.0, 87.0, max_epochs=50)
    finished(tmp_path, "latent_boost", 0.5, 0, 86.0, 86.0, T=0.9)
    finished(tmp_path, "latent_boost", 0.5, 0, 85.0, 85.0, hinge=False)
    differs = {row["detail"].split(",")[0]: row["differs"] for row in run_states([tmp_path])}
    assert differs == {"test 88.00 %": "the settings most runs of this name share",
                       "test 87.00 %": "trainer.max_epochs=50",
                       "test 86.00 %": "loss.T=0.9", "test 85.00 %": "loss.hinge=false"}


@pytest.mark.parametrize("planted", ["fifo", "dev_zero", "no_spec_fields", "analysis_fifo"])
def test_the_report_leaves_out_a_planted_run_with_a_warning_and_reports_the_rest(tmp_path, capsys, caplog,
                                                                                 planted):
    for seed in range(3):
        finished(tmp_path / "outputs", "ce", 0.0, seed, 88.0 + seed, 88.0)
    victim = finished(tmp_path / "outputs", "magnet", 0.5, 0, 90.0, 90.0)
    result = victim / ("analysis.json" if planted == "analysis_fifo" else "result.json")
    content = read_json(victim / "result.json")
    result.unlink(missing_ok=True)
    if planted in ("fifo", "analysis_fifo"):
        os.mkfifo(result)
    elif planted == "dev_zero":
        result.symlink_to("/dev/zero")
    else:
        result.write_text(json.dumps({**content, "spec": {"name": "x"}}))
    with within(60):
        assert cli("report", str(tmp_path / "outputs"), "--out", str(tmp_path / "report"),
                   "--no-figures") == 0
    table = (tmp_path / "report" / "report.md").read_text()
    assert "89.00 ± 1.00" in table  # the baseline's cell, from the runs that are fine
    if planted == "analysis_fifo":
        assert "analysis.json is unreadable" in caplog.text and "cluster metrics are left out" in caplog.text
    else:
        assert "left out: " in caplog.text and str(victim) in caplog.text


def test_a_finished_result_with_null_metrics_is_counted_missing_and_named(tmp_path, caplog):
    for seed in range(3):
        run_dir = finished(tmp_path / "outputs", "ce", 0.0, seed, 88.0 + seed, 88.0)
    result = read_json(run_dir / "result.json")
    result["test_accuracy"] = None
    del result["val_accuracy_best"]
    (run_dir / "result.json").write_text(json.dumps(result))
    assert cli("report", str(tmp_path / "outputs"), "--out", str(tmp_path / "report"), "--no-figures") == 0
    assert "88.50 ± 0.71‡" in (tmp_path / "report" / "report.md").read_text()  # two seeds, marked
    assert f"{run_dir} is finished but its result.json has no test_accuracy, val_accuracy_best" in caplog.text


@pytest.mark.parametrize("damage", ["fifo", "empty", "garbled", "no_epoch"])
def test_a_damaged_history_is_left_out_of_the_figures_not_the_report(tmp_path, caplog, damage):
    for seed in range(2):
        finished(tmp_path / "outputs", "ce", 0.0, seed, 88.0 + seed, 88.0)
    victim = finished(tmp_path / "outputs", "magnet", 0.5, 0, 90.0, 90.0)
    history = victim / "history.csv"
    history.unlink()
    if damage == "fifo":
        os.mkfifo(history)
    else:
        history.write_text({"empty": "", "garbled": '"\x00,,\n"x', "no_epoch": "a,b\n1,2\n"}[damage])
    with within(60):
        assert cli("report", str(tmp_path / "outputs"), "--out", str(tmp_path / "report"), "--no-tsne") == 0
    assert "left out of the figures" in caplog.text and str(victim) in caplog.text
    assert list((tmp_path / "report" / "figures").glob("training_curves_*.png"))


def test_the_report_prints_names_from_disk_escaped(tmp_path, capsys):
    config = run_config("ce", 0.0, 0)
    config["dataset"]["name"] = "evil\x1b]0;owned\x07"
    for seed in range(2):
        config["seed"] = seed
        write_run(tmp_path / "outputs", config, test_accuracy=88.0, test_micro_f1=0.88,
                  val_accuracy_best=88.0, epochs_run=3, best_epoch=2, epoch_seconds_mean=1.0,
                  train_seconds=3.0, silhouette_test=0.3)
    assert cli("report", str(tmp_path / "outputs"), "--out", str(tmp_path / "report"), "--no-figures") == 0
    out = capsys.readouterr().out
    assert "evil\\x1b]0;owned\\x07" in out and "\x1b" not in out and "\x07" not in out


def test_a_result_json_that_links_out_of_the_tree_is_never_read(tmp_path):
    """A run's file that is a symbolic link (to a system file, say) is unreadable, not followed."""
    from latentexp.io import read_json_object
    from latentexp.runs.rundir import RunDir

    outside = tmp_path / "elsewhere.json"
    outside.write_text('{"status": "finished", "test_accuracy": 99.9}')
    run = tmp_path / "outputs" / "runs" / "some-run"
    run.mkdir(parents=True)
    (run / "result.json").symlink_to(outside)
    with pytest.raises(OSError, match="a symbolic link"):
        read_json_object(run / "result.json")
    with pytest.raises(DataError, match="unreadable"):
        RunDir(run).read_result()
