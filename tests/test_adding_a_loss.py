"""docs/losses/README.md's "Adding a loss", run as printed: its module, YAML and test files are
written out, its tests pass, and its command trains one tiny epoch through the real console
script's entry point."""

import importlib
import re
import shlex

import pytest
import torch
from support.helpers import REPO_ROOT

from latentexp.cli import main

DOC = (REPO_ROOT / "docs" / "losses" / "README.md").read_text()


def doc_files() -> dict[str, str]:
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", DOC, flags=re.S))


def doc_command() -> list[str]:
    (command,) = re.findall(r"<!-- command -->\n```bash\n(.*?)\n```", DOC, flags=re.S)
    return shlex.split(command)


def test_the_walkthrough_has_a_module_a_yaml_a_test_file_and_a_command():
    assert set(doc_files()) == {"spread.py", "my_conf/loss/spread.yaml", "test_spread.py"}
    assert doc_command()[:3] == ["PYTHONPATH=.", "latentexp", "train"]


def test_the_walkthrough_trains_as_printed(tmp_path, monkeypatch, data_root, capsys):
    for name, text in doc_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # PYTHONPATH=.
    monkeypatch.setenv("LATENTEXP_DATA", str(data_root))
    args = doc_command()[3:]
    main(["train", *args, "trainer.max_epochs=1", "dataset.limit_train=200", "device=cpu"])
    (result,) = tmp_path.glob("outputs/runs/*/result.json")
    assert result.parent.name.startswith("fashion_mnist-cnn-spread-lam0.5-seed0-")
    assert '"status": "finished"' in result.read_text()

    tests = importlib.import_module("test_spread")  # the walkthrough's own test file, as pytest runs it
    ran = [name for name in dir(tests) if name.startswith("test_")]
    for name in ran:
        getattr(tests, name)()
    assert len(ran) == 3

    from spread import SpreadLoss  # and the formula against a loop written here, not in the doc

    x, y = torch.randn(9, 3, dtype=torch.float64), torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2])
    naive = sum(float(((x[i] - x[y == y[i]].mean(0)) ** 2).sum()) for i in range(9)) / 9
    assert SpreadLoss(num_classes=3, scale=2.0)(x, y).item() == pytest.approx(2.0 * naive)
    with pytest.raises(ValueError, match="loss.scale=-1 is invalid"):
        SpreadLoss(num_classes=3, scale=-1)
