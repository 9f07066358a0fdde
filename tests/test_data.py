import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from support.datasets import idx_bytes, write_cifar10, write_cifar100, write_fashion_mnist

from latentexp.config.components import load_raw
from latentexp.data import load_device_data, random_crop_flip, sources, train_val_indices
from latentexp.data.idx import read_idx
from latentexp.data.sources import load_cifar, load_fashion_mnist
from latentexp.errors import DataError


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Hide the Debian copy and $LATENTEXP_DATA, and run from an empty directory."""
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.delenv("LATENTEXP_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


# ---------------------------------------------------------------- IDX / Fashion-MNIST


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_idx_files(tmp_path, no_system_data, gz):
    write_fashion_mnist(tmp_path / "fm", n_train=120, n_test=30, gz=gz)
    raw = load_fashion_mnist(str(tmp_path / "fm"), download=False)
    assert raw.train_x.shape == (120, 1, 28, 28) and raw.train_x.dtype == np.uint8
    assert raw.test_x.shape == (30, 1, 28, 28) and raw.test_y.shape == (30,)
    assert raw.num_classes == 10 and set(raw.train_y) == set(range(10))


def test_idx_round_trip_is_exact(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "b.gz").write_bytes(gzip.compress(idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a"), array)
    assert np.array_equal(read_idx(tmp_path / "b.gz"), array)


def test_truncated_idx_is_refused_with_its_path(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-100])
    with pytest.raises(DataError, match=f"{path}.*truncated"):
        read_idx(path)


def test_truncated_gzip_is_refused_with_its_path(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((10, 28, 28), np.uint8)))[:50])
    with pytest.raises(DataError, match=str(path)):
        read_idx(path)


def test_wrongly_shaped_images_are_refused(tmp_path, no_system_data):
    d = write_fashion_mnist(tmp_path / "fm", n_train=50, n_test=20, gz=False)
    (d / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((50, 784), np.uint8)))
    with pytest.raises(DataError, match="must be \\(N, 28, 28\\)"):
        load_fashion_mnist(str(d), download=False)


def test_label_count_mismatch_is_refused(tmp_path, no_system_data):
    d = write_fashion_mnist(tmp_path / "fm", n_train=50, n_test=20, gz=False)
    (d / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(49, np.uint8)))
    with pytest.raises(DataError, match="train split"):
        load_fashion_mnist(str(d), download=False)


def test_missing_fashion_mnist_names_paths_and_remedy(tmp_path, no_system_data):
    with pytest.raises(DataError) as err:
        load_fashion_mnist(str(tmp_path / "nowhere"), download=False)
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message and "no-debian" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_fashion_mnist_found_through_environment_variable(tmp_path, no_system_data, monkeypatch):
    write_fashion_mnist(tmp_path / "env" / "fashion_mnist", n_train=40, n_test=20)
    monkeypatch.setenv("LATENTEXP_DATA", str(tmp_path / "env"))
    assert load_fashion_mnist(None, download=False).train_x.shape[0] == 40


# ---------------------------------------------------------------- CIFAR through torchvision


def test_cifar10_through_torchvision_loader(tmp_path, no_system_data):
    write_cifar10(tmp_path, per_batch=6, n_test=10)
    raw = load_cifar("cifar10", str(tmp_path), download=False, verify_md5=False)
    assert raw.train_x.shape == (30, 3, 32, 32) and raw.test_x.shape == (10, 3, 32, 32)
    assert raw.num_classes == 10


def test_cifar10_pixels_keep_their_channel_layout(tmp_path, no_system_data):
    write_cifar10(tmp_path, per_batch=6, n_test=10)
    import pickle

    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    raw = load_cifar("cifar10", str(tmp_path), download=False, verify_md5=False)
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values.
    assert np.array_equal(raw.test_x.reshape(10, -1), entry["data"])


def test_cifar100_fine_and_coarse_labels(tmp_path, no_system_data):
    write_cifar100(tmp_path, n_train=200, n_test=100)
    fine = load_cifar("cifar100", str(tmp_path), download=False, verify_md5=False)
    coarse = load_cifar("cifar100", str(tmp_path), download=False, verify_md5=False, label_set="coarse")
    assert fine.num_classes == 100 and coarse.num_classes == 20
    assert np.array_equal(coarse.train_y, fine.train_y // 5)


def test_cifar_md5_check_refuses_files_that_are_not_the_real_ones(tmp_path, no_system_data):
    write_cifar10(tmp_path, per_batch=6, n_test=10)
    with pytest.raises(DataError, match="not CIFAR's published files.*fetch the dataset again") as refused:
        load_cifar("cifar10", str(tmp_path), download=False, verify_md5=True)
    assert "verify_md5" not in str(refused.value)  # never advice to load files nobody checked


class _Planted:
    """A pickle that runs code as it loads: it writes the file it is given."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


@pytest.mark.parametrize("planted_file", ["data_batch_2", "batches.meta"])
@pytest.mark.parametrize("verify_md5", [True, False])
def test_a_planted_cifar_pickle_is_refused_without_running_it(tmp_path, no_system_data, planted_file,
                                                              verify_md5):
    import pickle

    write_cifar10(tmp_path, per_batch=6, n_test=10)
    marker = tmp_path / "it-ran"
    with open(tmp_path / "cifar-10-batches-py" / planted_file, "wb") as f:
        pickle.dump({"data": _Planted(marker), "labels": [0]}, f, protocol=2)
    with pytest.raises(DataError) as refused:
        load_cifar("cifar10", str(tmp_path), download=False, verify_md5=verify_md5)
    assert not marker.exists()
    assert "verify_md5=false" not in str(refused.value)
    if not verify_md5:
        assert f"{planted_file} was refused unread" in str(refused.value)
        assert "which a file of arrays never does" in str(refused.value)  # it names what it would call
        assert "Nothing in it was run" in str(refused.value)


def test_cifar_is_loaded_from_a_private_copy_of_the_files_it_checked(tmp_path, no_system_data, monkeypatch):
    """Checked and loaded are the same bytes: torchvision reads a copy in a directory of this
    process's own, so a file swapped in the shared folder after the check is never loaded."""
    from torchvision.datasets import CIFAR10

    write_cifar10(tmp_path, per_batch=6, n_test=10)
    roots, init = [], CIFAR10.__init__

    def spy(self, root, *args, **kwargs):
        roots.append(Path(root))
        init(self, root, *args, **kwargs)

    monkeypatch.setattr(CIFAR10, "__init__", spy)
    raw = load_cifar("cifar10", str(tmp_path), download=False, verify_md5=False)
    assert raw.train_x.shape[0] == 30 and raw.source == str(tmp_path.resolve() / "cifar-10-batches-py")
    assert roots and all(tmp_path.resolve() not in [r, *r.parents] for r in roots), roots
    assert all(not r.exists() for r in roots)  # the private copy is gone afterwards


def test_arrays_only_unpickling_reads_what_cifar_files_hold(tmp_path):
    import pickle

    from latentexp.data.safe_pickle import load_arrays_only

    entry = {b"batch_label": b"x", "data": np.arange(12, dtype=np.uint8).reshape(2, 6), "labels": [1, 2],
             "names": ["a", "b"], "scale": np.float32(0.5)}
    for protocol in (2, 4, 5):  # 5: pickle.HIGHEST_PROTOCOL, arrays through numeric._frombuffer
        (tmp_path / "batch").write_bytes(pickle.dumps(entry, protocol=protocol))
        loaded = load_arrays_only(tmp_path / "batch")
        assert np.array_equal(loaded["data"], entry["data"]) and loaded["labels"] == [1, 2]
        assert loaded["scale"] == np.float32(0.5) and loaded[b"batch_label"] == b"x"


def test_corrupt_cifar_pickle_is_refused(tmp_path, no_system_data):
    write_cifar10(tmp_path, per_batch=6, n_test=10)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch|CIFAR's format|corrupt"):
        load_cifar("cifar10", str(tmp_path), download=False, verify_md5=False)


def test_missing_cifar_uses_torchvision_download(tmp_path, no_system_data, monkeypatch):
    """With no local copy, the loader asks torchvision to download (the real path) into the
    first data root; here the download is simulated by writing the files it would fetch."""
    from torchvision.datasets import CIFAR10

    calls = []

    def fake_download(self):
        calls.append(self.root)
        write_cifar10(__import__("pathlib").Path(self.root), per_batch=4, n_test=8)

    monkeypatch.setattr(CIFAR10, "download", fake_download)
    raw = load_cifar("cifar10", str(tmp_path / "root"), download=True, verify_md5=False)
    assert calls == [str((tmp_path / "root").resolve())] and raw.train_x.shape[0] == 20


def test_missing_cifar_without_network_is_a_clear_error(tmp_path, no_system_data, monkeypatch):
    from torchvision.datasets import CIFAR10

    def no_network(self):
        raise OSError("network unreachable")

    monkeypatch.setattr(CIFAR10, "download", no_network)
    with pytest.raises(DataError, match="cifar-10-batches-py.*network unreachable.*fetch_data"):
        load_cifar("cifar10", str(tmp_path / "root"), download=True)


# ---------------------------------------------------------------- splits and tensors


def test_validation_split_is_stratified_and_seeded():
    labels = np.repeat(np.arange(10), 100)
    train, val = train_val_indices(labels, seed=3, val_fraction=0.1)
    assert len(val) == 100 and len(train) == 900 and not set(train) & set(val)
    assert np.all(np.bincount(labels[val], minlength=10) == 10)
    again = train_val_indices(labels, seed=3, val_fraction=0.1)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(train_val_indices(labels, seed=4, val_fraction=0.1)[1], val)


def test_limit_train_takes_a_seeded_subset_before_splitting():
    labels = np.repeat(np.arange(10), 100)
    train, val = train_val_indices(labels, seed=0, val_fraction=0.1, limit=200)
    assert len(train) + len(val) == 200
    assert np.all(np.bincount(labels[val], minlength=10) == 2)
    other_seed = train_val_indices(labels, seed=1, val_fraction=0.1, limit=200)
    assert set(np.r_[train, val]) != set(np.r_[other_seed[0], other_seed[1]])


def test_too_small_subset_for_a_stratified_split_is_a_clear_error():
    with pytest.raises(DataError, match="raise dataset.limit_train"):
        train_val_indices(np.repeat(np.arange(10), 100), seed=0, val_fraction=0.1, limit=12)


def test_device_data_batches_cover_the_training_set(tmp_path, no_system_data):
    write_fashion_mnist(tmp_path / "fm", n_train=300, n_test=50)
    cfg = {"name": "fashion_mnist", "root": str(tmp_path / "fm"), "download": False, "limit_train": None,
           "val_fraction": 0.1, "augment": False, "mean": [0.5], "std": [0.25]}
    data = load_device_data(load_raw(cfg), cfg, seed=0, device=torch.device("cpu"))
    assert data.train_x.dtype == torch.uint8 and len(data.train_y) == 270 and len(data.val_y) == 30
    g = torch.Generator().manual_seed(0)
    batches = list(data.train_batches(64, g))
    assert sum(len(y) for _, y in batches) == 270
    assert batches[0][0].dtype == torch.float32 and batches[0][0].shape[1:] == (1, 28, 28)
    seen = torch.cat([y for _, y in batches]).sort().values
    assert torch.equal(seen, data.train_y.sort().values)
    x = data.normalize(data.train_x[:5])
    assert torch.allclose(x, (data.train_x[:5].float() / 255 - 0.5) / 0.25)


def test_single_sample_remainder_batch_is_dropped():
    data_x = torch.zeros(129, 1, 4, 4, dtype=torch.uint8)
    from latentexp.data import DeviceData

    d = DeviceData(data_x, torch.zeros(129, dtype=torch.long), data_x[:2], torch.zeros(2, dtype=torch.long),
                   data_x[:2], torch.zeros(2, dtype=torch.long), torch.zeros(1, 1, 1, 1),
                   torch.ones(1, 1, 1, 1), 1, "test")
    sizes = [len(y) for _, y in d.train_batches(64, torch.Generator().manual_seed(0))]
    assert sizes == [64, 64]


def test_random_crop_flip_is_seeded_and_keeps_shape():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    a = random_crop_flip(x, torch.Generator().manual_seed(1), padding=2)
    b = random_crop_flip(x, torch.Generator().manual_seed(1), padding=2)
    assert a.shape == x.shape and torch.equal(a, b)
    # every output pixel is an input pixel or padding
    assert set(a.unique().tolist()) <= set(x.unique().tolist()) | {0.0}


def test_random_crop_without_offset_or_flip_is_identity():
    x = torch.rand(4, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=0)
    assert all(torch.equal(o, xi) or torch.equal(o, xi.flip(2)) for o, xi in zip(out, x, strict=True))


def test_limit_test_is_one_fixed_subset_for_every_run_seed(data_root):
    from latentexp.data.tensors import limited_test_indices

    subset = limited_test_indices(10000, 500)
    assert len(subset) == 500 and np.all(np.diff(subset) > 0)  # original order, no repeats
    assert np.array_equal(subset, limited_test_indices(10000, 500))
    assert np.array_equal(limited_test_indices(100, None), np.arange(100))
    cfg = {"name": "fashion_mnist", "root": str(data_root), "download": False, "limit_train": None,
           "limit_test": 20, "val_fraction": 0.1, "augment": False, "mean": [0.5], "std": [0.5]}
    first, second = (load_device_data(load_raw(cfg), cfg, seed, torch.device("cpu")) for seed in (0, 1))
    assert len(first.test_y) == 20 and torch.equal(first.test_x, second.test_x)
