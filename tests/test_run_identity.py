"""The run identity cannot lie: it holds the fingerprint of the data files a run reads and a hash
of the user's own code, so other data or edited code under the same command trains anew, and a
killed run never resumes onto other data."""

import gzip
import importlib
import json
from pathlib import Path

import pytest
from support.datasets import idx_bytes, write_fashion_mnist

from latentexp.config.tree import compose
from latentexp.data.idx import read_idx
from latentexp.launch.training import run
from latentexp.report.collect import collect_runs
from latentexp.runs.spec import RunSpec
from latentexp.train import Trainer

TINY = ("trainer.max_epochs=2", "dataset.limit_train=200", "dataset.limit_test=100", "trainer.batch_size=32")


def rewrite(source, target, change):
    """Copy the four IDX files from ``source`` to ``target``, ``change(name, array)`` applied."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        stem = path.name.removesuffix(".gz")
        (target / path.name).write_bytes(gzip.compress(idx_bytes(change(stem, read_idx(path)))))
    return target


@pytest.fixture
def real_and_altered(tmp_path):
    real = write_fashion_mnist(tmp_path / "real", n_train=300, n_test=100)
    inverted = rewrite(real, tmp_path / "inverted", lambda stem, a: 255 - a if "images" in stem else a)
    permuted = rewrite(real, tmp_path / "permuted", lambda stem, a: (a + 1) % 10 if "labels" in stem else a)
    return real, inverted, permuted


@pytest.mark.slow
def test_other_data_under_the_same_command_is_another_run(compose_cfg, real_and_altered, tmp_path):
    real, inverted, _ = real_and_altered
    first = run(compose_cfg(f"dataset.root={real}", *TINY))
    second = run(compose_cfg(f"dataset.root={inverted}", *TINY))
    assert first["status"] == second["status"] == "finished"
    assert first["spec"]["name"] != second["spec"]["name"]  # trained anew, not "already finished"
    assert first["spec"]["identity"]["data"] != second["spec"]["identity"]["data"]
    moved = run(compose_cfg(f"dataset.root={real.rename(real.parent / 'moved')}", *TINY))
    assert moved == first  # the same files elsewhere are the same data: the same run
    frame = collect_runs([tmp_path / "outputs"])
    assert len(frame) == 2 and frame["setup"].nunique() == 2  # the report never averages the two
    assert all("data=sha256:" in label for label in frame["setup"])


def test_a_killed_run_never_resumes_onto_other_data(compose_cfg, real_and_altered, monkeypatch):
    real, _, permuted = real_and_altered
    original_save = Trainer.save

    def die_after_epoch_1(self):
        original_save(self)
        raise KeyboardInterrupt  # killed right after epoch 1's checkpoint

    monkeypatch.setattr(Trainer, "save", die_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        run(compose_cfg(f"dataset.root={real}", *TINY))
    monkeypatch.setattr(Trainer, "save", original_save)
    killed = RunSpec.from_config(compose_cfg(f"dataset.root={real}", *TINY)).files
    assert killed.state() == "resumable (after epoch 1)"
    other = run(compose_cfg(f"dataset.root={permuted}", *TINY))
    assert other["spec"]["name"] != killed.name and other["epochs_run"] == 2
    assert killed.state() == "resumable (after epoch 1)"  # left as it was, for its own data


def test_files_that_change_while_a_run_starts_stop_it(compose_cfg, real_and_altered, monkeypatch):
    from latentexp.errors import DataError

    real, inverted, _ = real_and_altered
    cfg = compose_cfg(f"dataset.root={real}", *TINY)
    run_module = importlib.import_module("latentexp.launch.training")  # the module, not the function

    loading = run_module.load_device_data

    def swap_then_load(*args, **kwargs):  # the files are replaced between naming and reading
        for path in inverted.iterdir():
            (real / path.name).write_bytes(path.read_bytes())
        return loading(*args, **kwargs)

    monkeypatch.setattr(run_module, "load_device_data", swap_then_load)
    with pytest.raises(DataError, match="changed while the run started"):
        run(cfg)


LOSS_MODULE = '''
from latentexp.losses.base import AuxiliaryLoss


class SpreadLoss(AuxiliaryLoss):
    """Mean squared distance of each latent from the batch mean (center's config keys)."""

    def __init__(self, num_classes: int, center_rate: float = 0.25):
        super().__init__()

    def forward(self, features, labels):
        return ((features - features.mean(0)) ** 2).sum(1).mean() * FACTOR
'''


@pytest.mark.slow
def test_an_edited_loss_module_of_the_users_trains_anew(compose_cfg, tmp_path, monkeypatch):
    module = tmp_path / "user_code" / "my_spread.py"
    module.parent.mkdir()
    module.write_text(LOSS_MODULE.replace("FACTOR", "1.0"))
    monkeypatch.syspath_prepend(str(module.parent))
    overrides = ("loss=center", "loss._target_=my_spread.SpreadLoss", "loss.name=my_spread", "lambda=0.5",
                 *TINY)
    first = run(compose_cfg(*overrides))
    assert set(first["spec"]["identity"]["code"]) == {"loss"}
    assert "code" not in run(compose_cfg(*TINY))["spec"]["identity"]  # latentexp's and torch's: versions
    again = run(compose_cfg(*overrides))
    assert again == first  # unchanged code: the same run
    module.write_text(LOSS_MODULE.replace("FACTOR", "2.0"))
    edited = run(compose_cfg(*overrides))
    assert edited["spec"]["name"] != first["spec"]["name"] and edited["status"] == "finished"


def test_result_json_records_the_fingerprint(compose_cfg, real_and_altered):
    real, *_ = real_and_altered
    result = run(compose_cfg(f"dataset.root={real}", *TINY))
    files = RunSpec.from_config(compose_cfg(f"dataset.root={real}", *TINY)).files
    stored = json.loads(files.result_file.read_text())
    assert stored["spec"]["identity"]["data"] == result["spec"]["identity"]["data"]
    assert stored["spec"]["identity"]["data"].startswith("sha256:")


# The protocol study's 15 jobs on the real Fashion-MNIST files, in today's run format (6; recorded
# in format 5 before the refactoring that composed each job once): their data fingerprints are in
# these names.
PROTOCOL_RUNS = [
    "fashion_mnist-cnn-ce-lam0-seed0-de7cd154b3",
    "fashion_mnist-cnn-magnet-lam0.75-seed0-7e96a2cac2",
    "fashion_mnist-cnn-latent_boost-lam0.75-seed0-56fd45a99f",
    "fashion_mnist-cnn-ce-lam0-seed1-e6ae4ed7d8",
    "fashion_mnist-cnn-magnet-lam0.75-seed1-9b9baf4be5",
    "fashion_mnist-cnn-latent_boost-lam0.75-seed1-573bdb63e5",
    "fashion_mnist-cnn-ce-lam0-seed2-5779cdfec0",
    "fashion_mnist-cnn-magnet-lam0.75-seed2-0ee3192ab0",
    "fashion_mnist-cnn-latent_boost-lam0.75-seed2-faa7fff623",
    "fashion_mnist-cnn-ce-lam0-seed3-a9d168fa11",
    "fashion_mnist-cnn-magnet-lam0.75-seed3-8c79bc2458",
    "fashion_mnist-cnn-latent_boost-lam0.75-seed3-dc41e57a7f",
    "fashion_mnist-cnn-ce-lam0-seed4-9f4e5d562f",
    "fashion_mnist-cnn-magnet-lam0.75-seed4-25d464d9e7",
    "fashion_mnist-cnn-latent_boost-lam0.75-seed4-cce0cf8a4a",
]


DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs dataset-fashion-mnist")
def test_the_protocol_studys_jobs_keep_their_names_on_the_real_data(tmp_path):
    """What the preset list checks without data, with the data's fingerprint in the hash."""
    jobs = [(seed, loss, lam) for seed in range(5) for loss, lam in (("magnet", 0), ("magnet", 0.75),
                                                                    ("latent_boost", 0.75))]
    names = [RunSpec.from_config(compose(["experiment=paper_fashion_mnist", f"seed={seed}", f"loss={loss}",
                                          f"lambda={lam}", "trainer.amp=false",
                                          f"output_root={tmp_path}"])).name for seed, loss, lam in jobs]
    assert names == PROTOCOL_RUNS


HELPED_LOSS = '''
from latentexp.losses.base import AuxiliaryLoss
from my_helpers import scale


class HelpedLoss(AuxiliaryLoss):
    def __init__(self, num_classes: int, center_rate: float = 0.25):
        super().__init__()

    def forward(self, features, labels):
        return scale(((features - features.mean(0)) ** 2).sum(1).mean())
'''


def test_the_identity_covers_the_users_modules_the_loss_imports(tmp_path, monkeypatch):
    """Editing a helper module that the user's loss imports is other code: another identity. A
    package's __init__ and a module imported whole count too; the libraries do not."""
    from latentexp.runs.code_identity import user_code, user_modules

    code = tmp_path / "user_code"
    (code / "my_pkg").mkdir(parents=True)
    (code / "my_helpers.py").write_text("import my_pkg.numbers as numbers\n\ndef scale(x):\n"
                                        "    return numbers.FACTOR * x\n")
    (code / "my_pkg" / "__init__.py").write_text("")
    (code / "my_pkg" / "numbers.py").write_text("FACTOR = 1.0\n")
    (code / "my_helped.py").write_text(HELPED_LOSS)
    monkeypatch.syspath_prepend(str(code))
    for name in ("my_helped", "my_helpers", "my_pkg", "my_pkg.numbers"):
        monkeypatch.delitem(__import__("sys").modules, name, raising=False)
    config = {"loss": {"_target_": "my_helped.HelpedLoss"},
              "model": {"_target_": "latentexp.models.cnn.PaperCNN"}}
    first = user_code(config)
    assert set(first) == {"loss"}  # latentexp's own model is named by its version
    cls = __import__("my_helped").HelpedLoss
    assert set(user_modules(cls)) == {"my_helped", "my_helpers", "my_pkg", "my_pkg.numbers"}
    (code / "my_pkg" / "numbers.py").write_text("FACTOR = 2.0\n")  # two imports away
    assert user_code(config) != first
    (code / "my_pkg" / "numbers.py").write_text("FACTOR = 1.0\n")
    assert user_code(config) == first  # the same code again: the same identity
