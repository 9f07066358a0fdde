"""docs/models.md's "Adding a backbone", run as printed: its module, YAML and test files are
written out, its tests pass, and its command trains one tiny epoch through the console script's
entry point."""

import importlib
import re
import shlex

import pytest
import torch
from support.helpers import REPO_ROOT

from latentexp.cli import main

DOC = (REPO_ROOT / "docs" / "models.md").read_text()


def doc_files() -> dict[str, str]:
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", DOC, flags=re.S))


def doc_command() -> list[str]:
    (command,) = re.findall(r"<!-- command -->\n```bash\n(.*?)\n```", DOC, flags=re.S)
    return shlex.split(command)


def test_the_walkthrough_has_a_module_a_yaml_a_test_file_and_a_command():
    assert set(doc_files()) == {"lenet.py", "my_conf/model/lenet.yaml", "test_lenet.py"}
    assert doc_command()[:3] == ["PYTHONPATH=.", "latentexp", "train"]


@pytest.mark.slow
def test_the_walkthrough_trains_as_printed(tmp_path, monkeypatch, data_root):
    for name, text in doc_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # PYTHONPATH=.
    monkeypatch.setenv("LATENTEXP_DATA", str(data_root))
    main(["train", *doc_command()[3:], "trainer.max_epochs=1", "dataset.limit_train=200", "device=cpu"])
    (result,) = tmp_path.glob("outputs/runs/*/result.json")
    assert result.parent.name.startswith("fashion_mnist-lenet-latent_boost-lam0.75-seed0-")
    assert '"status": "finished"' in result.read_text()

    tests = importlib.import_module("test_lenet")  # the walkthrough's own test file, as pytest runs it
    ran = [name for name in dir(tests) if name.startswith("test_")]
    for name in ran:
        getattr(tests, name)()
    assert len(ran) == 2

    from lenet import LeNet  # and LeNet-5's shape, counted here rather than in the doc

    model = LeNet(1, (28, 28), num_classes=10)
    assert model.body[7].in_features == 16 * 5 * 5  # 28 -> 14 -> 10 -> 5
    assert sum(p.numel() for p in model.parameters()) == 61706  # LeNet-5's 61,706 weights and biases
    assert torch.isfinite(model(torch.rand(3, 1, 28, 28)).logits).all()
