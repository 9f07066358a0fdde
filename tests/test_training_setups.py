"""What a run can be set up with: the m-per-class sampler, optimizers and schedules, MNIST and
SVHN, and every loss on every backbone (training, learning, what predicts)."""

import copy

import numpy as np
import pytest
import torch
from support.datasets import write_fashion_mnist, write_svhn
from support.helpers import composed, make_trainer, synthetic_data

from latentexp.config.components import loss_names
from latentexp.config.tree import config_groups, group_option, instantiate
from latentexp.data.samplers import m_per_class_batches
from latentexp.data.sources import load_idx_dataset, load_svhn
from latentexp.errors import ConfigError, DataError
from latentexp.launch import build
from latentexp.losses import HeadLoss
from latentexp.train.trainer import step_scheduler

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


def _lrs(*overrides, epochs=1):
    """The optimizer and the learning rate of each epoch, built from the config groups as the
    trainer builds them (``_target_``), with a validation accuracy that never improves."""
    cfg = composed(("optimizer=sgd", "optimizer.lr=1.0", *overrides))
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = instantiate(cfg.optimizer, params)
    sched = instantiate(cfg.lr_scheduler, opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        step_scheduler(sched, 50.0)
    return opt, out


def test_sgd_gets_nesterov_momentum_and_weight_decay():
    opt, _ = _lrs("lr_scheduler=constant")
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD) and group["nesterov"] and group["momentum"] == 0.9
    assert group["weight_decay"] == 5e-4


def test_schedules():
    assert _lrs("lr_scheduler=multistep", "lr_scheduler.milestones=[2,4]", epochs=6)[1] == pytest.approx(
        [1, 1, 0.2, 0.2, 0.04, 0.04])
    assert _lrs("lr_scheduler=step", "lr_scheduler.step_size=3", epochs=4)[1] == pytest.approx([1, 1, 1, 0.1])
    assert _lrs("lr_scheduler=constant", epochs=3)[1] == [1, 1, 1]
    assert _lrs("lr_scheduler=plateau", "lr_scheduler.patience=1", epochs=4)[1] == pytest.approx(
        [1, 1, 1, 0.2])


def test_multistep_schedule_survives_a_checkpoint(tmp_path):
    schedule = ("optimizer=sgd", "optimizer.lr=0.1", "lr_scheduler=multistep",
                "lr_scheduler.milestones=[1,2]", "lr_scheduler.gamma=0.5")
    first = make_trainer(synthetic_data(), *schedule, loss="lmdl", max_epochs=2, run_dir=tmp_path)
    first.fit()
    again = make_trainer(synthetic_data(), *schedule, loss="lmdl", max_epochs=2, run_dir=tmp_path)
    assert again.resume()
    assert again.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    assert torch.equal(again.loss.centroids, first.loss.centroids)


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

# Every backbone of conf/model/ but those chosen by name (model.arch: tests/test_named_models.py),
# so that a backbone added there is trained here without a list to join.
BACKBONES = [m for m in config_groups()["model"] if "arch" not in group_option("model", m)]
# On the two big backbones, one loss of each way a loss meets a model: the logits (ce), the latent
# as an auxiliary loss (latent_boost) and as a head with its own parameters (arcface, lace), the
# penultimate features and the borrowed classifier (lmdl). Every loss runs on the other three.
REPRESENTATIVES = ("ce", "latent_boost", "arcface", "lace", "lmdl")


@pytest.mark.slow
@pytest.mark.parametrize("model", BACKBONES)
def test_every_loss_trains_on_every_backbone(model, monkeypatch):
    """One epoch of each loss on each backbone: a finite loss, and a finite gradient into every
    parameter of the backbone (a head loss leaves the model's own classifier alone) and of the loss."""
    # 16x16: a quarter of the cost of 32x32; one step of 16 (4 of each class: every loss finds pairs)
    data = synthetic_data(n=32, size=16, classes=4, channels=3)
    # The backbone is built once and copied for each loss (building VGG-16 alone takes a second).
    built = build.build_model_from_config(composed((f"model={model}",)).model, 3, (16, 16), 4)
    monkeypatch.setattr(build, "build_model_from_config", lambda *args: copy.deepcopy(built))
    for name in REPRESENTATIVES if model in ("vgg16", "resnet50") else loss_names():
        trainer = make_trainer(data, loss=name, lam=0.5, model=model, max_epochs=1, batch_size=16)
        before = {k: v.clone() for k, v in trainer.loss.state_dict().items()}
        trainer.fit()
        assert np.isfinite(trainer.history[0]["train_loss"]), (model, name)
        optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
        assert {id(p) for p in trainer.loss.parameters()} <= optimised, name  # a head's weights train
        # A head loss reads the latent: the layers after it (the classifier, VGG-16's fully connected
        # block) get no gradient.
        after_latent = ("classifier.", "head.") if isinstance(trainer.loss, HeadLoss) else ()
        params = [*trainer.model.named_parameters(), *trainer.loss.named_parameters()]
        for key, p in params:
            if not key.startswith(after_latent):
                assert p.grad is not None and torch.isfinite(p.grad).all(), (model, name, key)
        if name in ("center", "lmdl"):  # state moved and is part of the checkpointed state
            assert any(not torch.equal(before[k], v) for k, v in trainer.loss.state_dict().items())


CHANCE = 25.0  # four classes


@pytest.mark.slow
@pytest.mark.parametrize("name", loss_names())
def test_every_loss_learns_far_above_chance(name):
    """Four epochs of the paper CNN on learnable synthetic data (a bright row per class)."""
    trainer = make_trainer(synthetic_data(n=400), "optimizer.lr=3e-3", loss=name, lam=0.5, max_epochs=4)
    trainer.fit()
    trainer.restore_best()
    assert trainer.accuracy("test") >= CHANCE + 50.0, [row["val_accuracy"] for row in trainer.history]


def test_sphereface_without_its_annealing_collapses_to_chance():
    """Why the annealing is the default (docs/losses/angular_margin.md): the library's A-Softmax
    alone drives the latent's norm to zero, and every logit with it."""
    unannealed = ("loss.anneal_base=0", "loss.anneal_min=0")
    trainer = make_trainer(synthetic_data(n=400), "optimizer.lr=3e-3", *unannealed, loss="sphereface",
                           max_epochs=4)
    trainer.fit()
    trainer.restore_best()
    assert trainer.accuracy("test") <= CHANCE + 10.0, [row["val_accuracy"] for row in trainer.history]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn", "ffnn", "resnet18"])
def test_backbones_learn_far_above_chance(model):
    """VGG-16 and ResNet-50 are left out: their batch-norm statistics need more than a few tiny
    batches before evaluation-mode predictions mean anything (they get the gradient check above)."""
    trainer = make_trainer(synthetic_data(n=160, size=16, channels=3), loss="ce", model=model, max_epochs=4,
                           batch_size=16)
    trainer.fit()
    trainer.restore_best()
    assert trainer.accuracy("test") >= CHANCE + 50.0, [row["val_accuracy"] for row in trainer.history]


def test_head_replacing_loss_is_what_predicts(monkeypatch):
    trainer = make_trainer(synthetic_data(), loss="corel_gaussian", lam=0.8, max_epochs=1)
    x, _ = next(trainer.data.eval_batches("val", 8))
    out = trainer.model(x)
    assert torch.equal(trainer.scores(out), trainer.loss.logits(out.features["latent"]))
    assert not torch.equal(trainer.scores(out), out.logits)


@pytest.mark.slow
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
