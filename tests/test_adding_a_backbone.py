"""docs/models.md's "Adding a backbone", run as printed: its module, YAML and test files are
written out, its tests pass, and its command trains one tiny epoch through the console script's
entry point."""

import pytest
import torch
from support.walkthrough import Walkthrough

WALKTHROUGH = Walkthrough("models.md")


def test_the_walkthrough_has_a_module_a_yaml_a_test_file_and_a_command():
    assert set(WALKTHROUGH.files()) == {"lenet.py", "my_conf/model/lenet.yaml", "test_lenet.py"}
    assert WALKTHROUGH.command()[:3] == ["PYTHONPATH=.", "latentexp", "train"]


@pytest.mark.slow
def test_the_walkthrough_trains_as_printed(tmp_path, monkeypatch, data_root):
    run_dir, result, ran = WALKTHROUGH.run(tmp_path, monkeypatch, data_root, "trainer.max_epochs=1",
                                           "dataset.limit_train=200")
    assert run_dir.name.startswith("fashion_mnist-lenet-latent_boost-lam0.75-seed0-")
    assert result["status"] == "finished" and ran == 2

    from lenet import LeNet  # and LeNet-5's shape, counted here rather than in the doc

    model = LeNet(1, (28, 28), num_classes=10)
    assert model.body[7].in_features == 16 * 5 * 5  # 28 -> 14 -> 10 -> 5
    assert sum(p.numel() for p in model.parameters()) == 61706  # LeNet-5's 61,706 weights and biases
    assert torch.isfinite(model(torch.rand(3, 1, 28, 28)).logits).all()
