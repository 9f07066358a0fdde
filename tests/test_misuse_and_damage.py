"""Misuse and damage, one test (or more) each: a loss that never acts, a number's spelling,
divergence, damaged files, unwritable places, refused runs, permissions. No silent wrong result,
no traceback, nothing left behind. In this process wherever a real process is not the point."""

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from support.helpers import cli, make_trainer, synthetic_data
from support.runs import finished

from latentexp.config.components import loss_names
from latentexp.errors import DataError
from latentexp.launch.training import run, run_spec
from latentexp.report.command import build_report
from latentexp.runs.rundir import RunDir
from latentexp.runs.spec import RunSpec
from latentexp.train.early_stopping import EarlyStopping
from latentexp.train.trainer import LossNeverActed, TrainingDiverged

TINY = ("trainer.max_epochs=1", "dataset.limit_train=200", "dataset.limit_test=100")


# ---------------------------------------------------------------- a loss that never acts


def test_a_distance_loss_that_acts_on_no_sample_fails_the_run():
    """Batches of 2 can never hold a positive and a negative: Magnet acts on nothing, so the run
    must not finish as 'Magnet' while training (1 − λ)·CE (refused earlier by validation too)."""
    trainer = make_trainer(synthetic_data(), loss="magnet", max_epochs=3, batch_size=2)
    with pytest.raises(LossNeverActed, match="acted on no sample in epoch 1.*trainer.batch_size=2"):
        trainer.fit()


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["magnet", "latent_boost", "triplet", "contrastive", "npair"])
def test_the_fraction_of_samples_that_counted_is_recorded_per_epoch(loss):
    trainer = make_trainer(synthetic_data(), loss=loss, max_epochs=2, batch_size=32)
    trainer.fit()
    fractions = [row["counted_fraction"] for row in trainer.history]
    assert len(fractions) == 2 and all(0.9 < f <= 1.0 for f in fractions)  # 4 classes, 32 a batch: ~all


def test_the_counted_fraction_is_the_share_of_samples_with_the_partners_they_need():
    from latentexp.config.components import build_loss

    labels = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4])  # 1, 3, 4 alone: 5 of 8 have a positive
    for name, expected in (("magnet", 5 / 8), ("triplet", 5 / 8), ("npair", 5 / 8), ("contrastive", 1.0)):
        loss = build_loss(name, num_classes=5)
        loss(torch.randn(8, 3), labels)
        assert loss.epoch_stats()["counted_fraction"] == pytest.approx(expected), name
        assert loss.epoch_stats() == {} or "counted_fraction" not in loss.epoch_stats()  # reset


def test_a_run_whose_loss_never_acts_is_recorded_as_failed(compose_cfg, monkeypatch):
    # Past validation (which refuses batches of 2 for Magnet): the measured check must still catch it.
    monkeypatch.setattr("latentexp.launch.validation._check_batches_can_hold", lambda *a: None)
    result = run(compose_cfg("loss=magnet", "lambda=0.5", "trainer.batch_size=2", *TINY))
    assert result["status"] == "failed" and "acted on no sample" in result["reason"]


# ---------------------------------------------------------------- a number's spelling


@pytest.mark.slow
@pytest.mark.parametrize("plain,spelled", [
    ("optimizer.weight_decay=0.0", "optimizer.weight_decay=0"), ("loss.alpha=1.0", "loss.alpha=1"),
    ("lambda=1.0", "lambda=1"), ("loss.T=1.0", "loss.T=1"), ("model.dropout=0.0", "model.dropout=0"),
])
def test_the_identity_depends_on_values_not_their_spelling(compose_cfg, plain, spelled):
    a, b = RunSpec.from_config(compose_cfg(plain)), RunSpec.from_config(compose_cfg(spelled))
    assert (a.name, a.hash, a.identity, a.config) == (b.name, b.hash, b.identity, b.config)
    assert RunSpec.from_config(compose_cfg("trainer.batch_size=64")).config["trainer"]["batch_size"] == 64


# ---------------------------------------------------------------- divergence


@pytest.mark.slow
@pytest.mark.parametrize("name", loss_names())
def test_every_loss_fails_cleanly_when_training_diverges(name):
    trainer = make_trainer(synthetic_data(), "optimizer=sgd", "optimizer.lr=1e12", loss=name, max_epochs=2)
    with pytest.raises(TrainingDiverged):
        trainer.fit()


def test_a_diverging_latent_boost_run_ends_failed_with_a_reason(compose_cfg):
    cfg = compose_cfg("optimizer=sgd", "optimizer.lr=1e12", *TINY)
    result = run(cfg)
    assert result["status"] == "failed" and "became nan" in result["reason"]
    assert RunSpec.from_config(cfg).files.read_result()["status"] == "failed"


# ---------------------------------------------------------------- damaged files


def test_a_corrupt_result_json_is_named_and_deleting_it_evaluates_the_run_again(compose_cfg, monkeypatch):
    cfg = compose_cfg(*TINY)
    first = run(cfg)
    files = RunSpec.from_config(cfg).files
    files.result_file.write_text("{not json")
    with pytest.raises(DataError, match=f"{files.result_file} is unreadable.*Delete it"):
        run(cfg)
    files.result_file.unlink()
    monkeypatch.setattr("latentexp.train.trainer.Trainer.training_row",
                        lambda *a: pytest.fail("trained again instead of evaluating"))
    again = run(cfg)
    for key in ("test_accuracy", "val_accuracy_best", "best_epoch", "epochs_run", "silhouette_test"):
        assert again[key] == first[key], key


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "delete", "garble"])
def test_damaged_test_latents_are_named_and_train_rewrites_them_from_the_checkpoint(compose_cfg, damage,
                                                                                   monkeypatch):
    cfg = compose_cfg(*TINY)
    result = run(cfg)
    files = RunSpec.from_config(cfg).files
    original = files.load_latents()
    if damage == "truncate":
        files.latents.write_bytes(files.latents.read_bytes()[:500])
    elif damage == "garble":
        files.latents.write_bytes(b"PK\x03\x04" + os.urandom(300))
    else:
        files.latents.unlink()
    if damage != "delete":
        with pytest.raises(DataError, match=f"{files.latents} is unreadable.*run's `latentexp train`"):
            files.load_latents()
    monkeypatch.setattr("latentexp.train.trainer.Trainer.training_row",
                        lambda *a: pytest.fail("trained again instead of evaluating"))
    assert run(cfg) == result  # the result stands; the latents are rewritten
    repaired = files.load_latents()
    for key in ("labels", "predictions", "latents"):
        np.testing.assert_array_equal(repaired[key], original[key])


def test_a_finished_run_copied_with_its_small_files_only_is_not_trained_again(compose_cfg, monkeypatch,
                                                                              caplog):
    """result.json and history.csv, as docs/results/ commits them: the same command skips the run."""
    cfg = compose_cfg(*TINY)
    result = run(cfg)
    files = RunSpec.from_config(cfg).files
    files.latents.unlink()
    files.checkpoint.unlink()
    monkeypatch.setattr("latentexp.train.trainer.Trainer.training_row",
                        lambda *a: pytest.fail("trained again"))
    assert run(cfg) == result
    assert "neither test latents nor a checkpoint" in caplog.text and not files.latents.exists()


def test_analyze_and_report_name_a_damaged_latents_file(here, compose_cfg, capsys):
    cfg = compose_cfg(*TINY)
    run(cfg)
    files = RunSpec.from_config(cfg).files
    files.latents.write_bytes(b"not a zip")
    assert cli("analyze", str(files.path)) == 2
    err = capsys.readouterr().err
    assert str(files.latents) in err and "unreadable" in err and "Traceback" not in err


# ---------------------------------------------------------------- unwritable places


def test_an_output_root_under_a_file_is_refused_before_anything_is_written(here, capsys):
    (here / "afile").write_text("x")
    assert cli("train", "output_root=afile/out", *TINY) == 2
    err = capsys.readouterr().err
    assert "output_root=afile/out cannot be written" in err and "Traceback" not in err


def test_report_to_an_unwritable_place_is_a_clear_error(here, capsys):
    finished(here / "outputs", "ce", 0.0, 0, 88.0, 88.0)
    (here / "afile").write_text("x")
    assert cli("report", "outputs", "--out", "afile/report", "--no-figures") == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "--out DIR" in err and "Traceback" not in err


@pytest.fixture
def read_only(tmp_path):
    """A read-only filesystem (tmpfs remounted read-only); skipped where mounting is not allowed."""
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a filesystem here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_read_only_places_give_clear_errors_and_reading_still_works(here, compose_cfg, read_only, capsys):
    cfg = compose_cfg(*TINY, f"output_root={read_only}")
    run(cfg)
    run_dir = RunSpec.from_config(cfg).files.path
    assert subprocess.run(["mount", "-o", "remount,ro", str(read_only)], capture_output=True).returncode == 0
    assert cli("train", f"output_root={read_only / 'more'}", *TINY) == 2
    assert "Read-only file system" in capsys.readouterr().err
    assert cli("analyze", str(run_dir)) == 0  # prints its results; it only cannot cache them
    assert "kmeans" in capsys.readouterr().out
    assert cli("report", str(read_only), "--no-figures") == 2  # its default --out is inside the tree
    assert "--out DIR" in capsys.readouterr().err
    assert cli("report", str(read_only), "--out", str(here / "r")) == 0
    assert cli("status", str(read_only)) == 0


# ---------------------------------------------------------------- values nothing can take


@pytest.mark.parametrize("bad, said", [
    ("seed=1099511627776", "seed=1099511627776 is invalid: expected an integer from 0 to 2**32 - 1"),
    ("dataset.root=" + "r" * 10_000, "is 10000 characters: a path holds at most 4096 bytes"),
    ("model.name=" + "m" * 300, "model.name is 300 characters. Give model.name a shorter value"),
    ("trainer.batch_size=" + "9" * 10_000, "trainer.batch_size= holds a number of 10000 digits"),
])
def test_a_value_no_run_can_take_is_one_paragraph_before_anything_starts(here, capsys, bad, said):
    assert cli("train", *TINY, bad) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and len(err.splitlines()) == 1, err[:2000]
    assert not (here / "outputs" / "runs").exists()


def test_numbers_are_not_counted_when_python_reads_any_length(monkeypatch):
    from latentexp.cli import check_number_sizes

    monkeypatch.setattr(sys, "get_int_max_str_digits", lambda: 0, raising=False)  # -X int_max_str_digits=0
    check_number_sizes(["seed=1", "trainer.batch_size=" + "9" * 10_000])  # Python reads them: Hydra judges
    monkeypatch.delattr(sys, "get_int_max_str_digits")  # Python before 3.10.7
    check_number_sizes(["seed=1"])


def test_a_seed_past_32_bits_stops_a_sweep_before_its_first_job(here, capsys):
    assert cli("train", "-m", *TINY, "seed=0,1099511627776") == 2
    assert "seed=1099511627776 is invalid" in capsys.readouterr().err
    assert not (here / "outputs" / "runs").exists()


def test_a_refused_checkpoint_is_one_line_that_never_suggests_loading_it_anyway(tmp_path, caplog):
    trainer = make_trainer(synthetic_data(), max_epochs=1, run_dir=tmp_path)

    class Planted:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"epoch": 3, "x": Planted()}, trainer.files.checkpoint)
    assert not trainer.resume() and trainer.epoch == 0
    (record,) = [r for r in caplog.records if "checkpoint" in r.getMessage()]
    message = record.getMessage()
    assert "posix.system" in message and "refused unread" in message and "\n" not in message
    assert "weights_only" not in message


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KB filesystem (tmpfs): room for a run's small files, not for its checkpoint."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a filesystem here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_is_one_paragraph_and_the_run_resumes_once_there_is_room(here, small_disk, capsys):
    command = ("train", *TINY, "trainer.max_epochs=2", f"output_root={small_disk}")
    assert cli(*command) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt: the disk is full (No space left on device)" in err and "Traceback" not in err
    assert "the run resumes from its last checkpoint" in err
    (run_dir,) = small_disk.glob("runs/*")
    assert not list(run_dir.glob(".*.tmp")) and json.loads((run_dir / "spec.json").read_text())
    assert subprocess.run(["mount", "-o", "remount,size=50m", str(small_disk)]).returncode == 0
    assert cli(*command) == 0
    assert json.loads((run_dir / "result.json").read_text())["status"] == "finished"


def test_report_to_a_full_disk_says_so_and_names_the_file(here, small_disk, capsys):
    for seed in range(3):
        finished(here / "outputs", "ce", 0.0, seed, 88.0 + seed, 88.0)
    (small_disk / "filler").write_bytes(b"x" * (small_disk.stat().st_size or 1))
    with open(small_disk / "filler", "ab") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"x" * 65536)
            f.flush()
    assert cli("report", "outputs", "--out", str(small_disk / "report"), "--no-figures") == 2
    err = capsys.readouterr().err
    assert "the disk is full" in err and "None" not in err and "Traceback" not in err
    assert str(small_disk / "report") in err


# ---------------------------------------------------------------- another run's directory


@pytest.mark.slow
def test_a_run_aimed_at_another_runs_directory_is_refused_and_that_run_left_as_it_was(here, capsys):
    assert cli("train", "loss=ce", *TINY) == 0
    (run_dir,) = here.glob("outputs/runs/*")
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert cli("train", "loss=latent_boost", "lambda=0.5", "seed=7", f"hydra.run.dir={run_dir}", *TINY) == 2
    err = capsys.readouterr().err
    assert f"{run_dir} holds the run {run_dir.name}" in err and "nothing was reused" in err, err
    assert "Traceback" not in err
    after = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before  # Hydra's record of the job too: refused before Hydra wrote it


def test_a_killed_or_old_runs_directory_is_neither_resumed_nor_overwritten_by_another_run(here, compose_cfg):
    mine = RunSpec.from_config(compose_cfg(*TINY, "loss=magnet", "lambda=0.5"))
    theirs = RunSpec.from_config(compose_cfg(*TINY, "loss=ce"))
    theirs.files.path.mkdir(parents=True)
    theirs.files.start(theirs.to_json(), "a killed run's config\n")  # spec.json: started, never finished
    with pytest.raises(DataError, match=f"holds the run {theirs.name} .*not {mine.name}"):
        run_spec(RunSpec.from_json(mine.to_json(), theirs.files.path))
    assert json.loads(theirs.files.spec_file.read_text())["name"] == theirs.name
    old = here / "old-run"  # format 1: a config and a result, no spec
    old.mkdir()
    (old / "result.json").write_text(json.dumps({"status": "finished", "config": {
        "dataset": {"name": "fashion_mnist"}, "model": {"name": "cnn"}, "loss": {"name": "ce"}}}))
    with pytest.raises(DataError, match="holds a run written before run specs existed"):
        run_spec(RunSpec.from_json(mine.to_json(), old))
    mine_folder = here / "my-notes"  # hydra.run.dir=. or a folder of the user's: not a run at all
    mine_folder.mkdir()
    (mine_folder / "config.yaml").write_text("my: own\n")
    (mine_folder / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="holds files that are no run's \\(notes.txt\\)"):
        run_spec(RunSpec.from_json(mine.to_json(), mine_folder))
    assert (mine_folder / "config.yaml").read_text() == "my: own\n"
    damaged = theirs.files  # a result.json whose spec is not an object: unreadable, not a crash
    damaged.result_file.write_text(json.dumps({"status": "finished", "spec": "x"}))
    with pytest.raises(DataError, match="its spec is not a JSON object"):
        run_spec(RunSpec.from_json(mine.to_json(), damaged.path))


# ---------------------------------------------------------------- refused runs leave nothing


@pytest.mark.slow
@pytest.mark.parametrize("bad", [["dataset.limit_train=5"], ["device=cuda"],
                                 ["dataset=cifar10", "dataset.download=false", "dataset.root=nowhere"]])
def test_a_run_refused_before_training_leaves_nothing_behind(here, monkeypatch, capsys, bad):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if "dataset=cifar10" in bad:
        monkeypatch.delenv("LATENTEXP_DATA")
    assert cli("train", "trainer.max_epochs=1", "device=cpu", *bad) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not list(here.glob("outputs/runs/*")), list(here.glob("outputs/runs/*/*"))
    # Missing data is named before the output root is made; a refusal after that leaves it empty.
    assert not (here / "outputs").exists() or (cli("status", "outputs") == 0
                                               and "0 runs" in capsys.readouterr().out)


# ---------------------------------------------------------------- permissions


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_result_files_respect_the_umask(compose_cfg, umask, mode):
    old = os.umask(umask)
    try:
        cfg = compose_cfg(*TINY, f"seed={umask}")
        run(cfg)
    finally:
        os.umask(old)
    files = RunSpec.from_config(cfg).files
    for path in (files.result_file, files.checkpoint, files.history, files.config_file, files.latents,
                 files.spec_file):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path.name


# ---------------------------------------------------------------- smaller ones


def test_patience_zero_stops_at_the_first_epoch_that_does_not_improve():
    stopper = EarlyStopping(0)
    stopper.update(50.0, 0)
    assert not stopper.should_stop  # epoch 1 improved
    stopper.update(60.0, 1)
    assert not stopper.should_stop
    stopper.update(55.0, 2)
    assert stopper.should_stop
    trainer = make_trainer(synthetic_data(n=400), "optimizer.lr=3e-3", loss="ce", max_epochs=20,
                           early_stopping_patience=0)
    trainer.fit()
    vals = [row["val_accuracy"] for row in trainer.history]
    assert len(vals) >= 2 and all(b > a for a, b in zip(vals[:-2], vals[1:-1], strict=False))
    assert vals[-1] <= max(vals[:-1])  # it stopped at the first epoch that did not improve


def test_status_on_a_missing_path_or_a_file_is_an_error(here, capsys):
    assert cli("status", "nowhere") == 2
    (here / "afile").write_text("x")
    assert cli("status", "afile") == 2
    err = capsys.readouterr().err
    assert "nowhere does not exist" in err and "afile is a file" in err


@pytest.mark.parametrize("seeds", ["0", "-1", "two"])
def test_report_seeds_must_be_positive(here, seeds, capsys):
    finished(here / "outputs", "ce", 0.0, 0, 88.0, 88.0)
    assert cli("report", "outputs", "--seeds", seeds, "--no-figures") == 2
    assert "not a positive integer" in capsys.readouterr().err


def test_a_single_run_that_fails_exits_1(here, capsys):
    assert cli("train", "optimizer=sgd", "optimizer.lr=1e12", *TINY) == 1
    assert "failed: the training loss became nan" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sweep_whose_run_fails_goes_on_and_exits_0(here):
    assert cli("train", "-m", "hydra.launcher.n_jobs=1", "loss=magnet", "lambda=0.5", "optimizer=sgd",
               "optimizer.lr=1e12,1e-3", *TINY) == 0
    statuses = sorted(json.loads(p.read_text())["status"] for p in here.glob("outputs/runs/*/result.json"))
    assert statuses == ["failed", "finished"]


@pytest.mark.slow
def test_ctrl_c_stops_with_one_line_and_the_run_resumes(tmp_path, cli_env):
    args = [sys.executable, "-m", "latentexp", "train", "trainer.max_epochs=50", "dataset.limit_train=600",
            "trainer.batch_size=32", "device=cpu"]
    # A terminal's Ctrl-C: give the child SIGINT's default action, which a background CI job (`cmd &`
    # without job control) would otherwise pass down as "ignored".
    proc = subprocess.Popen(args, env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not list(tmp_path.glob("outputs/runs/*/history.csv")) and time.time() < deadline:
        time.sleep(0.05)  # the first epoch is checkpointed (checkpoint first, then its history row)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted. Run the same command again" in err
    (run_dir,) = tmp_path.glob("outputs/runs/*")
    assert RunDir(run_dir).state().startswith("resumable") and not list(run_dir.glob(".*.tmp"))


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(tmp_path, cli_env):
    for seed in range(30):
        finished(tmp_path / "outputs", "ce", 0.0, seed, 88.0, 88.0)
    out = subprocess.run(f"{sys.executable} -m latentexp status outputs | head -1", shell=True, env=cli_env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.stdout.count("\n") == 1 and "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


# ---------------------------------------------------------------- stale results after an upgrade


def test_results_record_the_code_they_came_from(compose_cfg):
    import latentexp

    result = run(compose_cfg(*TINY))
    assert result["versions"]["latentexp"] == latentexp.__version__
    assert "latentexp_revision" in result["versions"]  # a git commit here; None for a wheel


def test_report_flags_cells_whose_runs_come_from_different_code(tmp_path):
    root = tmp_path / "outputs"
    for seed, revision in enumerate(("aaaa", "aaaa", "bbbb")):
        run_dir = finished(root, "magnet", 0.5, seed, 90.0, 90.0)
        result = json.loads((run_dir / "result.json").read_text())
        result["versions"] = {"latentexp": "0.2.0", "latentexp_revision": revision}
        (run_dir / "result.json").write_text(json.dumps(result))
    text = build_report([root], tmp_path / "r", formats=("md",), with_figures=False)["markdown"]
    assert "| Magnet | 0.5 | 90.00 ± 0.00 | 0.9000 ± 0.0000 | 3† |" in text
    assert "0.2.0 aaaa | 0.2.0 bbbb" in text


def test_the_run_format_version_keeps_old_runs_apart(compose_cfg, monkeypatch):
    from latentexp.runs import spec as spec_module

    before = RunSpec.from_config(compose_cfg()).name
    monkeypatch.setattr(spec_module, "FORMAT_VERSION", spec_module.FORMAT_VERSION + 1)
    assert RunSpec.from_config(compose_cfg()).name != before  # a change that alters numbers bumps it
