"""docs/datasets.md's "Adding a dataset", run as printed: its module, YAML and test files are
written out, its tests pass, and its command trains one tiny epoch through the console script's
entry point."""

import numpy as np
import pytest
from support.walkthrough import Walkthrough

WALKTHROUGH = Walkthrough("datasets.md")


def test_the_walkthrough_has_a_module_a_yaml_a_test_file_and_a_command():
    assert set(WALKTHROUGH.files()) == {"digits.py", "my_conf/dataset/digits.yaml", "test_digits.py"}
    assert WALKTHROUGH.command()[:3] == ["PYTHONPATH=.", "latentexp", "train"]


@pytest.mark.slow
def test_the_walkthrough_trains_as_printed(tmp_path, monkeypatch, data_root):
    run_dir, run, ran = WALKTHROUGH.run(tmp_path, monkeypatch, data_root, "trainer.max_epochs=1")
    assert run_dir.name.startswith("digits-ffnn-latent_boost-lam0.75-seed0-")
    assert run["status"] == "finished" and ran == 2

    from digits import Digits  # and the data against scikit-learn's, read here rather than in the doc
    from sklearn.datasets import load_digits

    data, digits = Digits().load(), load_digits()
    assert sorted(np.concatenate([data.train_y, data.test_y])) == sorted(digits.target)
    assert int(np.concatenate([data.train_x, data.test_x]).astype(np.int64).sum()) == pytest.approx(
        digits.images.sum() * 255 / 16, rel=1e-3)  # every image, scaled to 0-255
    assert run["data"]["class_names"] == [str(d) for d in range(10)] and run["num_test"] == 360
