"""docs/datasets.md's "Adding a dataset", run as printed: its module, YAML and test files are
written out, its tests pass, and its command trains one tiny epoch through the console script's
entry point."""

import importlib
import json
import re
import shlex

import numpy as np
import pytest
from support.helpers import REPO_ROOT

from latentexp.cli import main

DOC = (REPO_ROOT / "docs" / "datasets.md").read_text()


def doc_files() -> dict[str, str]:
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", DOC, flags=re.S))


def doc_command() -> list[str]:
    (command,) = re.findall(r"<!-- command -->\n```bash\n(.*?)\n```", DOC, flags=re.S)
    return shlex.split(command)


def test_the_walkthrough_has_a_module_a_yaml_a_test_file_and_a_command():
    assert set(doc_files()) == {"digits.py", "my_conf/dataset/digits.yaml", "test_digits.py"}
    assert doc_command()[:3] == ["PYTHONPATH=.", "latentexp", "train"]


@pytest.mark.slow
def test_the_walkthrough_trains_as_printed(tmp_path, monkeypatch, data_root):
    for name, text in doc_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # PYTHONPATH=.
    monkeypatch.setenv("LATENTEXP_DATA", str(data_root))
    main(["train", *doc_command()[3:], "trainer.max_epochs=1", "device=cpu"])
    (result,) = tmp_path.glob("outputs/runs/*/result.json")
    assert result.parent.name.startswith("digits-ffnn-latent_boost-lam0.75-seed0-")
    assert '"status": "finished"' in result.read_text()

    tests = importlib.import_module("test_digits")  # the walkthrough's own test file, as pytest runs it
    ran = [name for name in dir(tests) if name.startswith("test_")]
    for name in ran:
        getattr(tests, name)()
    assert len(ran) == 2

    from digits import Digits  # and the data against scikit-learn's, read here rather than in the doc
    from sklearn.datasets import load_digits

    data, digits = Digits().load(), load_digits()
    assert sorted(np.concatenate([data.train_y, data.test_y])) == sorted(digits.target)
    assert int(np.concatenate([data.train_x, data.test_x]).astype(np.int64).sum()) == pytest.approx(
        digits.images.sum() * 255 / 16, rel=1e-3)  # every image, scaled to 0-255
    run = json.loads(result.read_text())
    assert run["data"]["class_names"] == [str(d) for d in range(10)] and run["num_test"] == 360
