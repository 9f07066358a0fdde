"""[2/5] harness pieces: samplers, optimizers and schedules, extra datasets, every loss on every
backbone, and the other papers' presets."""

import numpy as np
import pytest
import torch
from dataset_files import write_fashion_mnist, write_svhn
from test_trainer import make_trainer, synthetic_data

from latentexp.data.samplers import m_per_class_batches
from latentexp.data.sources import load_idx_dataset, load_svhn
from latentexp.errors import ConfigError, DataError
from latentexp.losses import LOSSES
from latentexp.train import run
from latentexp.train.optim import build_optimizer, build_scheduler, step_scheduler

# ---------------------------------------------------------------- m_per_class


@pytest.mark.parametrize("m,batch_size", [(4, 16), (2, 8), (5, 20)])
def test_m_per_class_batches_hold_m_samples_of_each_of_their_classes(m, batch_size):
    labels = torch.arange(200) % 10
    batches = m_per_class_batches(labels, batch_size, m, torch.Generator().manual_seed(0))
    assert len(batches) == 200 // batch_size
    for idx in batches:
        counts = torch.bincount(labels[idx], minlength=10)
        present = counts[counts > 0]
        assert len(idx) == batch_size and len(present) == batch_size // m and (present == m).all()
        assert len(set(idx.tolist())) == batch_size  # no repeats when classes are large enough


def test_m_per_class_is_seeded_and_covers_classes_evenly():
    labels = torch.arange(400) % 4
    first = m_per_class_batches(labels, 8, 4, torch.Generator().manual_seed(1))
    again = m_per_class_batches(labels, 8, 4, torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    used = torch.cat(first)
    assert len(set(used.tolist())) > 0.9 * len(used)  # drawn without replacement within a class


def test_m_per_class_rejects_impossible_batches():
    with pytest.raises(ConfigError, match="multiple of"):
        m_per_class_batches(torch.arange(100) % 10, 10, 4, torch.Generator())
    with pytest.raises(ConfigError, match="<= the 10 classes"):
        m_per_class_batches(torch.arange(100) % 10, 48, 4, torch.Generator())


def test_trainer_runs_with_the_m_per_class_sampler():
    trainer = make_trainer(synthetic_data(n=400), loss="magnet", max_epochs=1, batch_size=16,
                           sampler="m_per_class", m_per_class=4)
    trainer.fit()
    assert trainer.epoch == 1 and np.isfinite(trainer.history[0]["train_loss"])


# ---------------------------------------------------------------- optimizers and schedules


def _lrs(scheduler_cfg, epochs, flat_val=True):
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = build_optimizer(params, {"name": "sgd", "lr": 1.0, "momentum": 0.9, "nesterov": True,
                                   "weight_decay": 5e-4}, torch.device("cpu"))
    sched = build_scheduler(opt, scheduler_cfg)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        step_scheduler(sched, 50.0)
    return opt, out


def test_sgd_gets_nesterov_momentum_and_weight_decay():
    opt, _ = _lrs({"name": "constant"}, 1)
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD) and group["nesterov"] and group["momentum"] == 0.9
    assert group["weight_decay"] == 5e-4


def test_schedules():
    assert _lrs({"name": "multistep", "milestones": [2, 4], "gamma": 0.2}, 6)[1] == pytest.approx(
        [1, 1, 0.2, 0.2, 0.04, 0.04])
    assert _lrs({"name": "step", "step_size": 3, "gamma": 0.1}, 4)[1] == pytest.approx([1, 1, 1, 0.1])
    assert _lrs({"name": "constant"}, 3)[1] == [1, 1, 1]
    assert _lrs({"name": "plateau", "factor": 0.2, "patience": 1}, 4)[1] == pytest.approx([1, 1, 1, 0.2])


def test_multistep_schedule_survives_a_checkpoint(tmp_path):
    sched = {"name": "multistep", "milestones": [1, 2], "gamma": 0.5}
    optim = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
    first = make_trainer(synthetic_data(), loss="lmdl", max_epochs=2, checkpoint=tmp_path / "c.pt",
                         optimizer=optim, scheduler=sched)
    first.fit()
    again = make_trainer(synthetic_data(), loss="lmdl", max_epochs=3, checkpoint=tmp_path / "c.pt",
                         optimizer=optim, scheduler=sched)
    assert again.resume()
    assert again.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    assert torch.equal(again.loss_fn.centroids, first.loss_fn.centroids)


# ---------------------------------------------------------------- mnist and svhn


def test_mnist_from_idx_files(tmp_path):
    write_fashion_mnist(tmp_path / "mnist", n_train=100, n_test=20)
    raw = load_idx_dataset("mnist", str(tmp_path), download=False)
    assert raw.train_x.shape == (100, 1, 28, 28) and raw.num_classes == 10


def test_svhn_through_torchvision_loader(tmp_path):
    write_svhn(tmp_path / "svhn", n_train=40, n_test=20)
    raw = load_svhn(str(tmp_path), download=False, verify_md5=False)
    assert raw.train_x.shape == (40, 3, 32, 32) and raw.test_x.shape == (20, 3, 32, 32)
    assert raw.train_y.tolist()[:11] == list(range(10)) + [0]  # label 10 is digit 0
    with pytest.raises(DataError, match="incomplete or corrupt"):
        load_svhn(str(tmp_path), download=False, verify_md5=True)


def test_missing_svhn_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTEXP_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="svhn was not found.*train_32x32.mat"):
        load_svhn(str(tmp_path / "none"), download=False)


# ---------------------------------------------------------------- every loss on every backbone

BACKBONES = ["cnn", "ffnn", "resnet18", "vgg16", "resnet50"]


@pytest.mark.parametrize("model", BACKBONES)
def test_every_loss_trains_on_every_backbone(model):
    data = synthetic_data(n=64, size=16, classes=4)  # the backbones adapt to 16x16 at a quarter of the cost
    data.train_x = data.train_x.expand(-1, 3, -1, -1).contiguous()
    for split in ("val", "test"):
        setattr(data, f"{split}_x", getattr(data, f"{split}_x").expand(-1, 3, -1, -1).contiguous())
    for name in sorted(LOSSES):
        trainer = make_trainer(data, loss=name, lam=0.5, model=model, max_epochs=1, batch_size=16)
        before = {k: v.clone() for k, v in trainer.loss_fn.state_dict().items()}
        trainer.fit()
        row = trainer.history[0]
        assert np.isfinite(row["train_loss"]) and 0.0 <= row["val_accuracy"] <= 100.0, (model, name)
        loss_params = {id(p) for p in trainer.loss_fn.parameters()}
        optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
        assert loss_params <= optimised, name  # head-replacing losses' weights are optimised
        for p in trainer.loss_fn.parameters():
            assert p.grad is not None, (name, "a loss parameter got no gradient")
        if name in ("center", "lmdl"):  # state moved and is part of the checkpointed state
            assert any(not torch.equal(before[k], v) for k, v in trainer.loss_fn.state_dict().items())


def test_head_replacing_loss_is_what_predicts(monkeypatch):
    trainer = make_trainer(synthetic_data(), loss="corel_gaussian", lam=0.8, max_epochs=1)
    x, _ = next(trainer.data.eval_batches("val", 8))
    out = trainer.model(x)
    assert torch.equal(trainer.scores(out), trainer.loss_fn.logits(out.features["latent"]))
    assert not torch.equal(trainer.scores(out), out.logits)


# ---------------------------------------------------------------- presets


@pytest.mark.parametrize(
    "preset,checks",
    [
        ("corel_fashion_mnist_cnn", {"loss.name": "corel_gaussian", "optimizer.lr": 1e-4,
                                     "lambda": 0.85, "trainer.max_epochs": 150, "loss.lam": 0.85,
                                     "lr_scheduler.name": "constant"}),
        ("lace_cifar10_resnet18", {"loss.name": "lace", "model.name": "resnet18", "trainer.batch_size": 256,
                                   "trainer.early_stopping_patience": 10, "optimizer.lr": 1e-3}),
        ("lmdl_cifar10_resnet18", {"loss.name": "lmdl", "optimizer.name": "sgd",
                                   "optimizer.nesterov": True, "optimizer.weight_decay": 5e-4,
                                   "lr_scheduler.milestones": [60, 120, 160],
                                   "lr_scheduler.gamma": 0.2, "trainer.max_epochs": 200,
                                   "trainer.early_stopping_patience": None}),
        ("paper_cifar100", {"model.name": "resnet50", "dataset.name": "cifar100"}),
    ],
)
def test_presets_compose_and_run_one_tiny_epoch(compose_cfg, preset, checks):
    from omegaconf import OmegaConf

    cfg = compose_cfg(f"experiment={preset}")
    for key, value in checks.items():
        got = OmegaConf.select(cfg, key)
        assert (OmegaConf.to_container(got) if OmegaConf.is_config(got) else got) == value, key
    tiny = ["trainer.max_epochs=1", "trainer.batch_size=20", "dataset.verify_md5=false"]
    if "cifar100" in preset:
        tiny += ["dataset.label_set=coarse", "dataset.limit_train=100", "dataset.val_fraction=0.2"]
    elif "cifar10" in preset:
        tiny += ["dataset.limit_train=60", "dataset.val_fraction=0.2"]
    else:
        tiny = ["trainer.max_epochs=1", "dataset.limit_train=200"]
    result = run(compose_cfg(f"experiment={preset}", *tiny))
    assert result["status"] == "finished" and result["epochs_run"] == 1


def test_device_auto_claims_a_free_gpu_per_process(tmp_path, monkeypatch):
    """joblib jobs on a multi-GPU node: each process takes the first GPU no other one holds."""
    import fcntl

    from latentexp import runtime

    monkeypatch.setattr(runtime, "_claimed_gpu", None)
    held = open(tmp_path / "latentexp-gpu-0.lock", "w")  # noqa: SIM115  (another job holds GPU 0)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    import subprocess
    import sys
    code = ("import fcntl, sys\nfrom latentexp import runtime\n"
            f"print(runtime.claim_free_gpu(3, {str(tmp_path)!r}))")
    # flock is per open file description: a second process sees GPU 0 taken.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "1", out.stderr
    held.close()
    assert runtime.claim_free_gpu(3, str(tmp_path)) == 0  # free again
    assert runtime.claim_free_gpu(3, str(tmp_path)) == 0  # a process keeps its GPU
