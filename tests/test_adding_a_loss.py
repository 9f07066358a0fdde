"""docs/losses/README.md's "Adding a loss", run as printed: its module, YAML and test files are
written out, its tests pass, and its command trains one tiny epoch through the real console
script's entry point."""

import pytest
import torch
from support.walkthrough import Walkthrough

WALKTHROUGH = Walkthrough("losses/README.md")


def test_the_walkthrough_has_a_module_a_yaml_a_test_file_and_a_command():
    assert set(WALKTHROUGH.files()) == {"spread.py", "my_conf/loss/spread.yaml", "test_spread.py"}
    assert WALKTHROUGH.command()[:3] == ["PYTHONPATH=.", "latentexp", "train"]


def test_the_walkthrough_trains_as_printed(tmp_path, monkeypatch, data_root):
    run_dir, result, ran = WALKTHROUGH.run(tmp_path, monkeypatch, data_root, "trainer.max_epochs=1",
                                           "dataset.limit_train=200")
    assert run_dir.name.startswith("fashion_mnist-cnn-spread-lam0.5-seed0-")
    assert result["status"] == "finished" and ran == 3

    from spread import SpreadLoss  # and the formula against a loop written here, not in the doc

    x, y = torch.randn(9, 3, dtype=torch.float64), torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2])
    naive = sum(float(((x[i] - x[y == y[i]].mean(0)) ** 2).sum()) for i in range(9)) / 9
    assert SpreadLoss(num_classes=3, scale=2.0)(x, y).item() == pytest.approx(2.0 * naive)
    with pytest.raises(ValueError, match="loss.scale=-1 is invalid"):
        SpreadLoss(num_classes=3, scale=-1)
