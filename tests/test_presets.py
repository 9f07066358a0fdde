"""Every file of conf/experiment/, found by listing the folder: it composes, every job it sweeps
validates and resolves to a run spec, and a preset that names one run trains one tiny epoch."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from latentexp.config_tree import config_dir
from latentexp.sweeps import preset_configs
from latentexp.train import run
from latentexp.validation import validate_config

PRESETS = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml"))

# What some presets must set (the papers' settings), checked beside the generic checks.
EXPECTED = {
    "corel_fashion_mnist_cnn": {"loss.name": "corel_gaussian", "optimizer.lr": 1e-4, "lambda": 0.85,
                                "trainer.max_epochs": 150, "loss.lam": 0.85, "lr_scheduler.name": "constant"},
    "lace_cifar10_resnet18": {"loss.name": "lace", "model.name": "resnet18", "trainer.batch_size": 256,
                              "trainer.early_stopping_patience": 10, "optimizer.lr": 1e-3},
    "lmdl_cifar10_resnet18": {"loss.name": "lmdl", "optimizer.name": "sgd", "optimizer.nesterov": True,
                              "optimizer.weight_decay": 5e-4, "lr_scheduler.milestones": [60, 120, 160],
                              "lr_scheduler.gamma": 0.2, "trainer.max_epochs": 200,
                              "trainer.early_stopping_patience": None},
    "paper_fashion_mnist": {"model.name": "cnn", "dataset.name": "fashion_mnist"},
    "paper_cifar10": {"model.name": "vgg16", "dataset.name": "cifar10"},
    "paper_cifar100": {"model.name": "resnet50", "dataset.name": "cifar100"},
}
# One tiny epoch on the test data of each dataset.
TINY = {
    "fashion_mnist": ["dataset.limit_train=200"],
    "cifar10": ["dataset.limit_train=60", "dataset.val_fraction=0.2", "dataset.verify_md5=false"],
    "cifar100": ["dataset.label_set=coarse", "dataset.limit_train=100", "dataset.val_fraction=0.2",
                 "dataset.verify_md5=false"],
}


def test_the_folder_holds_the_presets_the_docs_name():
    assert {"paper_fashion_mnist", "paper_table2_cifar10", "example_fashion_mnist"} <= set(PRESETS)
    assert set(EXPECTED) <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_every_job_validates(preset):
    configs = preset_configs(preset)
    for cfg in configs:
        validate_config(cfg)
    for key, value in EXPECTED.get(preset, {}).items():
        got = OmegaConf.select(configs[0], key)
        assert (OmegaConf.to_container(got) if OmegaConf.is_config(got) else got) == value, key


@pytest.mark.parametrize("preset", [p for p in PRESETS if len(preset_configs(p)) == 1])
def test_every_single_run_preset_trains_one_tiny_epoch(compose_cfg, preset):
    dataset = preset_configs(preset)[0].dataset.name
    cfg = compose_cfg(f"experiment={preset}", "trainer.max_epochs=1", "trainer.batch_size=20", *TINY[dataset])
    result = run(cfg)
    assert result["status"] == "finished" and result["epochs_run"] == 1
