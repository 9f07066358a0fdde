import json

import pytest
import torch

from latentexp.data import DeviceData
from latentexp.losses import LOSSES, build_loss
from latentexp.models import build_model
from latentexp.train import Trainer, run
from latentexp.train.checkpoint import load_checkpoint

TRAINER_CFG = {"max_epochs": 50, "batch_size": 32, "early_stopping_patience": 20, "eval_batch_size": 64,
               "amp": True, "progress": False}


def synthetic_data(n=200, classes=4, size=8, seed=0, learnable=True) -> DeviceData:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randint(0, 100, (n, 1, size, size), generator=g, dtype=torch.uint8)
    if learnable:
        x[torch.arange(n), 0, y, :] = 255  # a bright row per class
    else:
        y = y[torch.randperm(n, generator=g)]
    split = lambda a: (a[: n // 2], a[n // 2 : 3 * n // 4], a[3 * n // 4 :])  # noqa: E731
    (tx, vx, sx), (ty, vy, sy) = split(x), split(y)
    return DeviceData(tx, ty, vx, vy, sx, sy, torch.zeros(1, 1, 1, 1), torch.full((1, 1, 1, 1), 0.5),
                      classes, "synthetic")


def make_trainer(data, loss="latent_boost", lam=0.5, seed=0, checkpoint=None, lr=1e-3, lr_patience=10,
                 model="cnn", optimizer=None, scheduler=None, **cfg):
    torch.manual_seed(seed)
    net = build_model(model, data.in_channels, data.image_size, data.num_classes)
    loss_fn = build_loss(loss, num_classes=data.num_classes,
                         embedding_size=net.feature_dims[LOSSES[loss].feature] if loss != "ce" else None)
    return Trainer(net, loss_fn, data, {**TRAINER_CFG, **cfg}, lam, seed, torch.device("cpu"),
                   identity="test", optimizer_cfg=optimizer or {"name": "adam", "lr": lr},
                   scheduler_cfg=scheduler or {"name": "plateau", "factor": 0.2, "patience": lr_patience},
                   checkpoint_path=checkpoint)


def test_plateau_lowers_lr_and_stops_early():
    # A learning rate this small leaves every prediction unchanged: validation accuracy is flat.
    trainer = make_trainer(synthetic_data(learnable=False), lr=1e-12, lr_patience=1,
                           early_stopping_patience=4)
    trainer.fit()
    lrs = [row["lr"] for row in trainer.history]
    assert trainer.stopped_early and trainer.epoch == 5  # best at epoch 1, then 4 flat epochs
    assert lrs[:3] == [1e-12] * 3  # two flat epochs exceed patience 1: the third step lowers it
    assert lrs[3] == pytest.approx(0.2e-12) and lrs[4] == pytest.approx(0.2e-12)
    assert trainer.stopper.best_epoch == 0


def test_trainer_learns_and_keeps_the_best_weights():
    trainer = make_trainer(synthetic_data(n=400), max_epochs=8, lr=3e-3)
    trainer.fit()
    assert trainer.epoch == 8 and not trainer.stopped_early
    assert trainer.stopper.best > 50.0  # chance is 25 %
    trainer.restore_best()
    assert trainer.accuracy("val") == pytest.approx(trainer.stopper.best)


class Killed(Exception):
    pass


@pytest.mark.parametrize("loss,lam", [("latent_boost", 0.75), ("magnet", 0.5), ("ce", 0.0)])
def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, monkeypatch, loss, lam):
    data = synthetic_data()
    straight = make_trainer(data, loss, lam, max_epochs=5, checkpoint=tmp_path / "a.pt")
    straight.fit()

    path = tmp_path / "b.pt"
    interrupted = make_trainer(data, loss, lam, max_epochs=5, checkpoint=path)
    original_save = Trainer.save

    def save_then_die(self):
        original_save(self)
        if self.epoch == 2:
            raise Killed  # the process dies right after epoch 2's checkpoint

    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(Killed):
        interrupted.fit()
    monkeypatch.setattr(Trainer, "save", original_save)

    resumed = make_trainer(data, loss, lam, seed=123, max_epochs=5, checkpoint=path)  # seed must not matter
    assert resumed.resume() and resumed.epoch == 2
    resumed.fit()
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(resumed.history) == strip(straight.history)
    for (k, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k


def test_checkpoint_of_another_config_is_not_reused(tmp_path):
    data = synthetic_data()
    first = make_trainer(data, max_epochs=1, checkpoint=tmp_path / "c.pt")
    first.fit()
    other = make_trainer(data, max_epochs=1, checkpoint=tmp_path / "c.pt")
    other.identity = "another"
    assert not other.resume() and other.epoch == 0


def test_checkpoint_holds_only_safe_types(tmp_path):
    trainer = make_trainer(synthetic_data(), max_epochs=1, checkpoint=tmp_path / "c.pt")
    trainer.fit()
    state = load_checkpoint(tmp_path / "c.pt")  # weights_only=True would refuse anything else
    assert state["epoch"] == 1 and len(state["history"]) == 1 and state["best"] is not None


# ---------------------------------------------------------------- run(cfg) end to end


def test_run_writes_result_and_history_and_does_not_retrain(compose_cfg, monkeypatch):
    cfg = compose_cfg("trainer.max_epochs=2", "dataset.limit_train=300", "trainer.batch_size=64")
    result = run(cfg)
    assert result["status"] == "finished" and result["epochs_run"] == 2
    for key in ("test_accuracy", "test_micro_f1", "test_macro_f1", "val_accuracy_best", "best_epoch",
                "epoch_seconds_mean", "train_seconds", "silhouette_test", "pca_components", "device",
                "versions", "config", "identity"):
        assert key in result, key
    assert len(result["pca_components"]) == 2
    assert result["test_micro_f1"] == pytest.approx(result["test_accuracy"] / 100)
    run_dir = next((cfg.output_root and __import__("pathlib").Path(cfg.output_root) / "runs").iterdir())
    assert run_dir.name.startswith("fashion_mnist-cnn-latent_boost-lam0.75-seed0-")
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "val_accuracy" in history[0] and "pca_components" in history[0]
    assert json.loads((run_dir / "result.json").read_text())["test_accuracy"] == result["test_accuracy"]

    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("a finished run was trained again"))
    assert run(cfg)["test_accuracy"] == result["test_accuracy"]


def test_run_directory_depends_on_every_result_changing_key(compose_cfg):
    from latentexp.identity import run_name

    base = run_name(compose_cfg())
    assert run_name(compose_cfg()) == base
    assert run_name(compose_cfg("device=cuda")) == base  # where a run happens is not its identity
    changes = ("seed=1", "lambda=0.5", "trainer.batch_size=64", "loss.T=0.9", "dataset.limit_train=500")
    for override in changes:
        assert run_name(compose_cfg(override)) != base, override


@pytest.mark.parametrize(
    "overrides",
    [
        ("dataset=cifar10", "model=vgg16", "loss=magnet", "lambda=0.5"),
        ("dataset=cifar100", "model=cnn", "dataset.val_fraction=0.25", "trainer.batch_size=100"),
        ("dataset=cifar100", "model=resnet50", "dataset.label_set=coarse", "dataset.limit_train=100",
         "dataset.val_fraction=0.2", "trainer.batch_size=40"),
        ("dataset=cifar10", "model=cnn", "loss=ce", "lambda=0", "dataset.augment=true"),
    ],
)
def test_cifar_runs_end_to_end(compose_cfg, overrides):
    cfg = compose_cfg(*overrides, "trainer.max_epochs=1", "dataset.verify_md5=false")
    result = run(cfg)
    assert result["status"] == "finished" and 0.0 <= result["test_accuracy"] <= 100.0
    assert result["num_test"] in (40, 100)


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
    from latentexp.train.lock import holder
    from latentexp.train.run import default_run_dir

    assert holder(default_run_dir(cfg)) is None  # the run's lock is released
    assert not list((tmp_path / "outputs" / "runs").glob("*/result.json"))  # nothing recorded as done
