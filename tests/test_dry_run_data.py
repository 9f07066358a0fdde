"""A --dry-run names every run of a sweep without loading, decoding or downloading its data: the
runs' names hold the data's fingerprint, whose file digests are computed once per machine (cached
by file stamp), so a sweep's dry-run reads each dataset file at most once, and none once cached."""

import pytest
from support.datasets import write_fashion_mnist
from support.helpers import cli

from latentexp.data import fingerprint, sources
from latentexp.data.datasets import DataSource


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Fresh digests (a cache of this test's own), every file hash and every load counted."""
    monkeypatch.setenv("LATENTEXP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fingerprint, "_memory", {})
    hashed: list[str] = []
    hash_file = fingerprint._sha256
    monkeypatch.setattr(fingerprint, "_sha256", lambda path: hashed.append(path.name) or hash_file(path))

    def no_load(self):
        raise AssertionError(f"a --dry-run loaded {type(self).__name__}")

    for cls in _subclasses(DataSource):
        monkeypatch.setattr(cls, "load", no_load, raising=False)
    return hashed


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


SWEEP = ("train", "-m", "loss=ce,magnet", "lambda=0.5", "seed=0,1,2", "--dry-run")


def test_a_sweeps_dry_run_reads_each_file_once_and_none_once_cached(here, counted, monkeypatch, capsys):
    root = here / "fm"
    write_fashion_mnist(root, n_train=300, n_test=50)
    assert cli(*SWEEP, f"dataset.root={root}") == 0  # 6 jobs, 4 files
    first = capsys.readouterr().out
    assert sorted(counted) == sorted(p.name for p in root.iterdir()), counted
    counted.clear()
    monkeypatch.setattr(fingerprint, "_memory", {})  # another process: the cache file alone
    assert cli(*SWEEP, f"dataset.root={root}") == 0
    assert counted == [] and capsys.readouterr().out == first  # the same runs, no byte read


def test_a_dry_run_never_downloads_a_missing_dataset(here, counted, monkeypatch, capsys):
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", here / "no-debian")
    monkeypatch.delenv("LATENTEXP_DATA")
    code = cli(*SWEEP, f"dataset.root={here / 'nowhere'}", "dataset.download=true")
    err = capsys.readouterr().err
    assert code == 2 and "a --dry-run reads and fetches no data" in err, err
    assert counted == []


def test_a_searchs_dry_run_never_downloads_either(here, counted, monkeypatch, capsys):
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", here / "no-debian")
    monkeypatch.delenv("LATENTEXP_DATA")
    code = cli("train", "-m", "hydra/sweeper=optuna", "lambda=interval(0.1,0.9)",
               f"dataset.root={here / 'nowhere'}", "dataset.download=true", "--dry-run")
    err = capsys.readouterr().err
    assert code == 2 and "a --dry-run reads and fetches no data" in err, err
    assert counted == []

