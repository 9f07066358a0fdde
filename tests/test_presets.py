"""Every file of conf/experiment/, found by listing the folder: it composes, every job it sweeps
validates and resolves to a run spec, and a preset that names one run trains one tiny epoch."""

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from latentexp.config.tree import compose, config_dir, group_option
from latentexp.launch.sweeps import preset_configs
from latentexp.launch.training import run
from latentexp.launch.validation import validate_config
from latentexp.runs.spec import RunSpec

PRESETS = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml"))
# Every job's run name (and so its hash) of every preset, recorded before the refactoring that
# moved each loss's rules into its class and composed each job once: a change here is a run-format
# change, which renames every user's runs and needs its own decision and format number.
RECORDED_RUNS = json.loads((Path(__file__).parent / "golden" / "preset_runs.json").read_text())

# What some presets must set (the papers' settings), checked beside the generic checks.
EXPECTED = {
    "corel_fashion_mnist_cnn": {"loss.name": "corel_gaussian", "optimizer.lr": 1e-4, "lambda": 0.85,
                                "trainer.max_epochs": 150, "loss.lam": 0.85, "lr_scheduler.name": "constant"},
    "lace_cifar10_resnet18": {"model.name": "resnet18", "trainer.batch_size": 256,
                              "trainer.early_stopping_patience": 10, "optimizer.lr": 1e-3},
    # the authors' CE + L at lr 1e-3, weight decay 5e-4, as Eq. 11's ½(CE + L): lr and decay rescaled
    "lmdl_cifar10_resnet18": {"loss.name": "lmdl", "lambda": 0.5, "optimizer.name": "sgd",
                              "optimizer.nesterov": True, "optimizer.lr": 2e-3,
                              "optimizer.weight_decay": 2.5e-4, "lr_scheduler.milestones": [60, 120, 160],
                              "lr_scheduler.gamma": 0.2, "trainer.max_epochs": 200,
                              "trainer.early_stopping_patience": None},
    "paper_fashion_mnist": {"model.name": "cnn", "dataset.name": "fashion_mnist"},
    "paper_cifar10": {"model.name": "vgg16", "dataset.name": "cifar10"},
    "paper_cifar100": {"model.name": "resnet50", "dataset.name": "cifar100"},
}
# One tiny epoch on the test data of each dataset; 20 CIFAR test images (evaluating VGG-16 or ResNet-50
# on more would cost most of the run).
TINY = {
    "fashion_mnist": ["dataset.limit_train=200"],
    "cifar10": ["dataset.limit_train=60", "dataset.val_fraction=0.2", "dataset.limit_test=20",
                "dataset.verify_md5=false"],
    "cifar100": ["dataset.label_set=coarse", "dataset.limit_train=100", "dataset.val_fraction=0.2",
                 "dataset.limit_test=20", "dataset.verify_md5=false"],
}


def test_the_folder_holds_the_presets_the_docs_name():
    assert {"paper_fashion_mnist", "paper_table2_cifar10", "example_fashion_mnist"} <= set(PRESETS)
    assert set(EXPECTED) <= set(PRESETS)
    assert set(RECORDED_RUNS) == set(PRESETS), "a preset was added or removed: record its run names"


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_every_job_validates_and_keeps_its_run_names(preset):
    configs = preset_configs(preset)
    for cfg in configs:
        validate_config(cfg)
    names = [RunSpec.from_config(cfg, resolve_data=False).name for cfg in configs]
    assert names == RECORDED_RUNS[preset]
    for key, value in EXPECTED.get(preset, {}).items():
        got = OmegaConf.select(configs[0], key)
        assert (OmegaConf.to_container(got) if OmegaConf.is_config(got) else got) == value, key


@pytest.mark.slow
@pytest.mark.parametrize("preset", [p for p in PRESETS if len(RECORDED_RUNS[p]) == 1])  # cheap to collect
def test_every_single_run_preset_trains_one_tiny_epoch(compose_cfg, preset):
    dataset = preset_configs(preset)[0].dataset.name
    cfg = compose_cfg(f"experiment={preset}", "trainer.max_epochs=1", "trainer.batch_size=20", *TINY[dataset])
    result = run(cfg)
    assert result["status"] == "finished" and result["epochs_run"] == 1


# LACE's Table 1 (papers/lace.md): each row's loss, λ where it mixes with softmax, and the settings
# LACE gave it that differ from conf/loss/ (ArcFace's margin in degrees: 0.05 rad).
LACE_TABLE1 = {
    "softmax": ("ce", {}),
    "arcface": ("arcface", {"margin": 2.865, "scale": 30.0}),
    "cosface": ("cosface", {"margin": 0.4, "scale": 30.0}),
    "sphereface": ("sphereface", {}),
    "center": ("center", {}),
    "amc": ("amc", {}),
    "lace": ("lace", {}),
}


@pytest.mark.slow
def test_the_lace_preset_trains_lace_alone_and_sweeps_its_table_1():
    single = compose(["experiment=lace_cifar10_resnet18"])
    assert single.loss.name == "lace"
    assert {p.stem for p in (Path(config_dir()) / "lace_table1").glob("*.yaml")} == set(LACE_TABLE1)
    jobs = set()
    for cfg in preset_configs("lace_cifar10_resnet18"):
        loss = OmegaConf.to_container(cfg.loss)
        defaults = group_option("loss", loss["name"])
        changes = {k: v for k, v in loss.items() if defaults.get(k) != v}
        assert cfg.model.name == "resnet18" and cfg.dataset.name == "cifar10"
        assert cfg["lambda"] == 0.1 or loss["name"] not in ("center", "amc")
        jobs.add((loss["name"], tuple(sorted(changes.items())), cfg.seed))
    assert jobs == {(name, tuple(sorted(changes.items())), seed)
                    for name, changes in LACE_TABLE1.values() for seed in range(3)}
    assert math.isclose(math.radians(LACE_TABLE1["arcface"][1]["margin"]), 0.05, rel_tol=1e-3)


def test_the_lmdl_preset_takes_the_authors_sgd_steps_on_half_their_loss():
    """The authors minimise CE + L with SGD (lr 1e-3, weight decay 5e-4, Nesterov 0.9); the preset
    minimises Eq. 11 at λ = 0.5, ½(CE + L), with its own lr and decay: the weights must follow the
    same path."""
    cfg = preset_configs("lmdl_cifar10_resnet18")[0]
    torch.manual_seed(0)
    x, target = torch.randn(16, 5), torch.randn(16, 3)
    start = torch.nn.Linear(5, 3)
    paths = []
    assert cfg["lambda"] == 1 - cfg["lambda"]  # λ·L + (1 − λ)·CE is then λ·(CE + L)
    authors, preset = (1.0, 1e-3, 5e-4), (cfg["lambda"], cfg.optimizer.lr, cfg.optimizer.weight_decay)
    for scale, lr, decay in (authors, preset):
        model = copy.deepcopy(start)
        sgd = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=decay)
        for _ in range(5):
            sgd.zero_grad()
            (scale * (model(x) - target).pow(2).sum()).backward()
            sgd.step()
        paths.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert cfg.optimizer.nesterov and cfg.optimizer.momentum == 0.9
    torch.testing.assert_close(paths[1], paths[0], rtol=1e-6, atol=1e-8)
