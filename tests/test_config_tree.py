"""Composing the config tree: a choice of config groups is composed by Hydra once per process, and
the plain values are set on a copy. Every result must be Hydra's own composition of the whole
command, node for node (types, flags, Hydra's node), and an edited conf/ file must be seen."""

import os
import shutil

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from latentexp.config import tree as config_tree
from latentexp.config.tree import compose, hydra_compose


def nodes(node, path="") -> list:
    """Every node of a config: its path, its kind and declared type, its flags and its value."""
    flags = {f: node._get_node_flag(f) for f in ("struct", "readonly", "allow_objects", "convert")}
    if isinstance(node, DictConfig | ListConfig):
        found = [(path, type(node).__name__, node._metadata.ref_type, flags, node._is_none())]
        if not node._is_none() and not node._is_missing():
            keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
            for key in keys:
                found += nodes(node._get_node(key), f"{path}.{key}")
        return found
    return [(path, type(node).__name__, node._metadata.ref_type, flags, repr(node._value()))]


COMMANDS = [
    [],
    ["loss=magnet", "lambda=0.5", "seed=3"],
    ["lambda=1", "trainer.max_epochs=2", "trainer.early_stopping_patience=null", "dataset.root=null"],
    ["experiment=paper_cifar100", "loss=latent_boost", "lambda=0.5"],
    ["experiment=lmdl_cifar10_resnet18", "lr_scheduler.milestones=[3,5]", "optimizer.lr=1e-2"],
    ["ablation=no_pca", "loss.T=0.9", "trainer.amp=yes"],  # OmegaConf's conversion of a declared bool
    ["logger=[tensorboard,mlflow]", "logger.mlflow.experiment_name=x", "output_root=${oc.env:HOME}/o"],
    ["dataset=cifar10", "model=vgg16", "loss=corel_gaussian", "lambda=0.85", "dataset.limit_train=60"],
    ["hydra.launcher.n_jobs=2", "seed=1", "loss=triplet", "trainer.sampler=m_per_class"],
    ["+optimizer.foreach=true", "++seed=4", "lambda=0.25", "~dataset.mean"],  # added, forced, deleted
]


@pytest.mark.parametrize("with_hydra", [False, True])
@pytest.mark.parametrize("overrides", COMMANDS)
def test_a_composition_is_hydras_own_node_for_node(overrides, with_hydra, tmp_path, monkeypatch):
    first = compose(overrides, with_hydra)
    monkeypatch.chdir(tmp_path)  # Hydra's node records the working directory of each composition
    ours, theirs = compose(overrides, with_hydra), hydra_compose(overrides, with_hydra)
    assert nodes(ours) == nodes(theirs)
    if with_hydra:
        assert ours.hydra.runtime.cwd == os.getcwd() != first.hydra.runtime.cwd
        task = OmegaConf.to_container(ours.hydra.overrides.task)
        assert task == [o for o in overrides if not o.startswith("hydra.")]


def test_each_composition_is_a_copy_of_its_own():
    one = compose(["loss=magnet", "lambda=0.5"])
    one.loss.alpha = 99.0
    one.trainer.max_epochs = 1
    assert compose(["loss=magnet", "lambda=0.25"]) == hydra_compose(["loss=magnet", "lambda=0.25"])


@pytest.mark.parametrize("overrides", [
    ["trainer.foo=1"],  # a key the config lacks
    ["trainer.max_epochs=abc"],  # a declared integer
    ["loss=nope"],  # an option the group lacks
    ["+lambda=0.5"],  # an addition where a value is
    ["~trainer.nope"],  # a deletion of nothing
    ["lambda=0.5,0.75"],  # a sweep where one value is composed
    ["loss=magnet", "loss.k=[1"],  # not an override
])
def test_what_hydra_refuses_it_refuses_in_its_own_words(overrides):
    with pytest.raises(Exception) as ours:
        compose(overrides)
    with pytest.raises(Exception) as theirs:
        hydra_compose(overrides)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_an_edited_config_file_is_composed_anew(tmp_path, monkeypatch):
    tree = shutil.copytree(config_tree.config_dir(), tmp_path / "conf")
    monkeypatch.setattr(config_tree, "config_dir", lambda: str(tree))
    assert compose(["loss=magnet", "lambda=0.5"]).loss.alpha == 1.0
    magnet = tree / "loss" / "magnet.yaml"
    magnet.write_text(magnet.read_text().replace("alpha: 1.0", "alpha: 2.0"))
    assert compose(["loss=magnet", "lambda=0.5"]).loss.alpha == 2.0
