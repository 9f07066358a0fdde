import json
import re

import numpy as np
import pytest
import torch
from support.helpers import (
    assert_same_run,
    cli,
    kill_after_checkpoint,
    make_trainer,
    result_files,
    synthetic_data,
)

from latentexp.launch.training import run
from latentexp.runs.rundir import RunDir
from latentexp.runs.spec import RunSpec
from latentexp.train import Trainer
from latentexp.train.checkpoint import load_checkpoint


def test_plateau_lowers_lr_and_stops_early():
    # A learning rate this small leaves every prediction unchanged: validation accuracy is flat.
    trainer = make_trainer(synthetic_data(learnable=False), "optimizer.lr=1e-12", "lr_scheduler.patience=1",
                           early_stopping_patience=4)
    trainer.fit()
    lrs = [row["lr"] for row in trainer.history]
    assert trainer.stopped_early and trainer.epoch == 5  # best at epoch 1, then 4 flat epochs
    assert lrs[:3] == [1e-12] * 3  # two flat epochs exceed patience 1: the third step lowers it
    assert lrs[3] == pytest.approx(0.2e-12) and lrs[4] == pytest.approx(0.2e-12)
    assert trainer.stopper.best_epoch == 0


def test_trainer_learns_and_keeps_the_best_weights():
    trainer = make_trainer(synthetic_data(n=400), "optimizer.lr=3e-3", max_epochs=8)
    trainer.fit()
    assert trainer.epoch == 8 and not trainer.stopped_early
    assert trainer.stopper.best > 50.0  # chance is 25 %
    trainer.restore_best()
    assert trainer.accuracy("val") == pytest.approx(trainer.stopper.best)


def test_the_test_evaluates_the_last_epochs_weights_when_asked(compose_cfg):
    """trainer.test_checkpoint=last tests the weights training ended with, best those of the best
    validation epoch; result.json says which epoch was tested."""
    tiny = ("trainer.max_epochs=3", "dataset.limit_train=300", "trainer.batch_size=64", "optimizer.lr=0.02",
            "loss=ce", "lambda=0")
    best = run(compose_cfg(*tiny))
    last = run(compose_cfg(*tiny, "trainer.test_checkpoint=last"))
    assert best["spec"]["name"] != last["spec"]["name"]  # another run, trained the same way
    assert last["tested_epoch"] == last["epochs_run"] == 3 and best["tested_epoch"] == best["best_epoch"]
    trainer = make_trainer(synthetic_data(n=200), "trainer.test_checkpoint=last", max_epochs=2)
    trainer.fit()
    weights = trainer.weights()
    trainer.restore_tested()  # nothing to restore: the last epoch's weights stay
    assert all(torch.equal(v, weights["model"][k]) for k, v in trainer.model.state_dict().items())


@pytest.mark.slow
@pytest.mark.parametrize("loss,lam", [("latent_boost", 0.75), ("magnet", 0.5), ("ce", 0.0)])
def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, monkeypatch, loss, lam):
    data = synthetic_data()
    straight = make_trainer(data, loss=loss, lam=lam, max_epochs=5, run_dir=tmp_path / "a")
    straight.fit()

    interrupted = make_trainer(data, loss=loss, lam=lam, max_epochs=5, run_dir=tmp_path / "b")
    kill_after_checkpoint(interrupted, monkeypatch, epoch=2)  # the process dies right after epoch 2's

    # Every random state comes back from the checkpoint: a trainer built with another seed (its
    # identity set to the checkpoint's) continues exactly where the killed one stopped.
    resumed = make_trainer(data, loss=loss, lam=lam, seed=123, max_epochs=5, run_dir=tmp_path / "b")
    resumed.identity = interrupted.identity
    assert resumed.resume() and resumed.epoch == 2
    resumed.fit()
    assert_same_run(straight, resumed)


def test_checkpoint_of_another_config_is_not_reused(tmp_path):
    data = synthetic_data()
    first = make_trainer(data, max_epochs=1, run_dir=tmp_path)
    first.fit()
    other = make_trainer(data, max_epochs=1, run_dir=tmp_path)
    other.identity = "another"
    assert not other.resume() and other.epoch == 0


def test_the_epoch_line_shows_eq11s_parts_the_schedule_and_the_time_left(caplog):
    caplog.set_level("INFO", logger="latentexp")
    make_trainer(synthetic_data(), max_epochs=2, loss="latent_boost", lam=0.5).fit()
    lines = [r.getMessage() for r in caplog.records]
    first, last = (line for line in lines if line.startswith("epoch "))
    assert re.search(r"loss [\d.]+ \(ce [\d.]+, dist [\d.]+, α 2\.00, β 1\.00\)", first), first
    assert re.search(r"≤ \d+ s left$", first) and "left" not in last  # nothing left after the last
    assert sum("rises by design" in line for line in lines) == 1  # said once, before the first epoch
    caplog.clear()
    make_trainer(synthetic_data(), "loss.schedule=false", max_epochs=1, loss="latent_boost", lam=0.5).fit()
    assert "rises by design" not in caplog.text  # α and β stay as they are: nothing to explain
    caplog.clear()
    make_trainer(synthetic_data(), max_epochs=1, loss="ce", lam=0.0).fit()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert "(ce" not in line and "rises by design" not in caplog.text  # one part only: nothing to split


def test_checkpoint_holds_only_safe_types(tmp_path):
    trainer = make_trainer(synthetic_data(), max_epochs=1, run_dir=tmp_path)
    trainer.fit()
    state = load_checkpoint(RunDir(tmp_path).checkpoint)  # weights_only=True would refuse anything else
    assert state["epoch"] == 1 and len(state["history"]) == 1 and state["best"] is not None


# ---------------------------------------------------------------- run(cfg) end to end


def test_run_writes_result_and_history_and_does_not_retrain(compose_cfg, monkeypatch, caplog):
    caplog.set_level("INFO", logger="latentexp")
    cfg = compose_cfg("trainer.max_epochs=2", "dataset.limit_train=300", "trainer.batch_size=64")
    result = run(cfg)
    assert result["status"] == "finished" and result["epochs_run"] == 2
    for key in ("test_accuracy", "test_micro_f1", "test_macro_f1", "val_accuracy_best", "best_epoch",
                "epoch_seconds_mean", "train_seconds", "silhouette_test", "pca_components", "device",
                "versions", "spec"):
        assert key in result, key
    assert len(result["pca_components"]) == 2
    spec_dir = RunSpec.from_config(cfg).files
    assert f"run directory {spec_dir.path}" in caplog.text and f"result written to {spec_dir.result_file}" \
        in caplog.text
    assert result["test_micro_f1"] == pytest.approx(result["test_accuracy"] / 100)
    spec = RunSpec.from_config(cfg)
    assert result["spec"] == spec.to_json()  # the spec is stored whole, and read back from there
    run_dir = spec.run_dir
    assert run_dir.name.startswith("fashion_mnist-cnn-latent_boost-lam0.75-seed0-")
    assert json.loads((run_dir / "spec.json").read_text()) == spec.to_json()
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "val_accuracy" in history[0] and "pca_components" in history[0]
    assert json.loads((run_dir / "result.json").read_text())["test_accuracy"] == result["test_accuracy"]

    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("a finished run was trained again"))
    assert run(cfg)["test_accuracy"] == result["test_accuracy"]


@pytest.mark.slow
def test_run_directory_depends_on_every_result_changing_key(compose_cfg):
    def name(*overrides):
        return RunSpec.from_config(compose_cfg(*overrides)).name

    base = name()
    assert name() == base
    assert name("device=cuda") == base  # where a run happens is not its identity
    changes = ("seed=1", "lambda=0.5", "trainer.batch_size=64", "loss.T=0.9", "dataset.limit_train=500",
               "optimizer=sgd", "lr_scheduler=step", "model.dropout=0.5")
    for override in changes:
        assert name(override) != base, override


@pytest.mark.parametrize(
    "overrides",
    [
        ("dataset=cifar10", "model=vgg16", "loss=magnet", "lambda=0.5"),
        ("dataset=cifar100", "model=cnn", "dataset.val_fraction=0.25", "trainer.batch_size=100"),
        ("dataset=cifar100", "model=resnet50", "dataset.label_set=coarse", "dataset.limit_train=100",
         "dataset.val_fraction=0.2", "dataset.limit_test=40", "trainer.batch_size=40"),
        ("dataset=cifar10", "model=cnn", "loss=ce", "lambda=0", "dataset.augment=true"),
    ],
)
@pytest.mark.slow
def test_cifar_runs_end_to_end(compose_cfg, overrides):
    cfg = compose_cfg(*overrides, "trainer.max_epochs=1", "dataset.verify_md5=false")
    result = run(cfg)
    assert result["status"] == "finished" and result["num_test"] in (40, 100)
    saved = RunSpec.from_config(cfg).files.load_latents()  # what the result's numbers come from
    latent_dim = {"vgg16": 512, "cnn": 64, "resnet50": 2048}[result["spec"]["model"]]
    assert saved["latents"].shape == (result["num_test"], latent_dim)
    assert 100 * np.mean(saved["predictions"] == saved["labels"]) == pytest.approx(result["test_accuracy"])


def test_a_cifar_run_learns_far_above_chance(compose_cfg):
    """The CIFAR test files are learnable (a bright stripe per class): the whole path from the
    pickles to the test metrics must beat chance (10 %) by far."""
    cfg = compose_cfg("dataset=cifar10", "model=cnn", "loss=ce", "trainer.max_epochs=8",
                      "trainer.batch_size=16", "dataset.verify_md5=false", "dataset.val_fraction=0.2")
    result = run(cfg)
    assert result["test_accuracy"] >= 60.0, result["test_accuracy"]


def test_cuda_out_of_memory_names_the_batch_size_to_lower(compose_cfg, monkeypatch, tmp_path):
    from latentexp.errors import ConfigError
    from latentexp.train.trainer import Trainer

    def out_of_memory(self):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "fit", out_of_memory)
    cfg = compose_cfg("trainer.max_epochs=1", "dataset.limit_train=300")
    with pytest.raises(ConfigError, match=r"during training .*trainer.batch_size \(now 128\), e.g. "
                                          r"trainer.batch_size=64"):
        run(cfg)
    assert RunSpec.from_config(cfg).files.holder() is None  # the run's lock is released
    assert not list((tmp_path / "outputs" / "runs").glob("*/result.json"))  # nothing recorded as done


def test_a_run_resumed_on_its_own_thread_count_gives_the_process_its_own_back(here, capfd):
    """A resumed run takes the thread count it started with; once it ends, the process (a notebook,
    a sweep's jobs in one process) has the count it had before."""
    run = ["train", "loss=ce", "trainer.max_epochs=1", "dataset.limit_train=200", "dataset.limit_test=60",
           "device=cpu", "model=ffnn"]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert cli(*run) == 0
        (result,) = result_files(here / "outputs")
        result.unlink()  # unfinished again: the same command resumes it from its checkpoint
        torch.set_num_threads(1)
        capfd.readouterr()
        assert cli(*run) == 0
        said = "".join(capfd.readouterr())
        assert "resuming with the 2 CPU threads the run started with (this job was given 1)" in said, said
        assert json.loads(result.read_text())["threads"] == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
