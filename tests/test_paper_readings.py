"""The readings of the Latent Boost paper's unstated protocol (conf/paper_reading/,
docs/paper_protocol.md): each changes exactly the keys it documents, today's changes nothing, and
the screen preset runs each once as the baseline."""

from pathlib import Path

import pytest

from latentexp.config.tree import compose, config_dir
from latentexp.launch.sweeps import preset_configs
from latentexp.runs.spec import RunSpec, plain_config

READINGS = {
    "today": {},
    "inputs_unit": {"dataset.mean": [0.0], "dataset.std": [1.0]},
    "inputs_raw": {"dataset.mean": [0.0], "dataset.std": [1 / 255]},
    "last_checkpoint": {"trainer.test_checkpoint": "last"},
    "latent_global_max": {"model.latent": "global_max"},
    "latent_global_avg": {"model.latent": "global_avg"},
    "batch_32": {"trainer.batch_size": 32},
    "lr_1e-4": {"optimizer.lr": 1e-4},
}
BASE = ["experiment=paper_fashion_mnist", "loss=ce", "lambda=0", "trainer.amp=false"]


def flat(node, prefix=""):
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


def test_the_folder_holds_the_documented_readings():
    assert {p.stem for p in (Path(config_dir()) / "paper_reading").glob("*.yaml")} == set(READINGS)


@pytest.mark.parametrize("reading", READINGS)
def test_each_reading_changes_exactly_its_keys(reading):
    today = flat(plain_config(compose(BASE)))
    read = flat(plain_config(compose([*BASE, f"paper_reading={reading}"])))
    changed = {k: read[k] for k in read if read[k] != today.get(k)}
    assert changed.keys() == READINGS[reading].keys() and set(read) == set(today)
    for key, value in READINGS[reading].items():
        assert changed[key] == pytest.approx(value), key


# The screen's second stage: two readings at once (the pooled latents, closest alone, with another).
COMBINATIONS = {
    ("global_avg", 32, 1e-3, 0.286),
    ("global_max", 32, 1e-3, 0.286),
    ("global_avg", 128, 1e-3, 0.0),
    ("global_avg", 128, 1e-4, 0.286),
}


def test_the_screen_combines_the_pooled_latents_with_one_other_reading():
    configs = preset_configs("paper_baseline_screen_fashion_mnist")[len(READINGS):]
    found = {(c.model.latent, c.trainer.batch_size, c.optimizer.lr, round(c.dataset.mean[0], 3))
             for c in configs}
    assert found == COMBINATIONS


def test_the_screen_runs_the_baseline_once_per_reading_in_float32():
    configs = preset_configs("paper_baseline_screen_fashion_mnist")
    specs = [RunSpec.from_config(c, resolve_data=False) for c in configs]
    assert len({s.name for s in specs}) == len(READINGS) + len(COMBINATIONS) == len(specs)
    assert {(s.loss, s.lam, s.seed) for s in specs} == {("ce", 0.0, 0)}
    for c in configs:  # the paper's protocol: full data, at most 100 epochs, patience 20
        assert c.trainer.amp is False and c.trainer.max_epochs == 100 and c.dataset.limit_train is None
        assert c.trainer.early_stopping_patience == 20
    today = RunSpec.from_config(compose([*BASE, "seed=0"]), resolve_data=False).name
    assert today in {s.name for s in specs}  # today's reading is the protocol's own baseline run


def test_the_row_from_the_paper_baseline_is_15_runs_at_the_closest_reading():
    configs = preset_configs("paper_row_fashion_mnist_latent_global_avg")
    specs = [RunSpec.from_config(c, resolve_data=False) for c in configs]
    assert len({s.name for s in specs}) == 15 and {s.seed for s in specs} == set(range(5))
    assert {(s.loss, s.lam) for s in specs} == {("ce", 0.0), ("magnet", 0.75), ("latent_boost", 0.75)}
    for c in configs:  # the reading, at the paper's protocol, in float32
        assert c.model.latent == "global_avg" and c.trainer.amp is False and c.trainer.max_epochs == 100
    # The screen's run at that reading is the row's seed-0 baseline: one identity, one run.
    screen = {RunSpec.from_config(c, resolve_data=False).name: c.model.latent
              for c in preset_configs("paper_baseline_screen_fashion_mnist")}
    shared = {s.name for s in specs} & set(screen)
    assert len(shared) == 1 and screen[shared.pop()] == "global_avg"
