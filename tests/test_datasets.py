"""The dataset group's own-data options: an image folder, an .npz, any torchvision class; means and
standard deviations computed, the class count from the data, data too large refused, and bad
input refused before any work with one paragraph."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.datasets import write_arrays, write_fashion_mnist, write_image_folder
from support.helpers import cli

from latentexp.config.components import build_source, load_raw
from latentexp.data.tensors import training_statistics
from latentexp.errors import DataError

QUICK = ("model=cnn", "loss=ce", "lambda=0", "trainer.max_epochs=8", "trainer.batch_size=16",
         "trainer.progress=false", "device=cpu")


def trained(output_root) -> dict:
    [path] = list(output_root.glob("runs/*/result.json"))
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images") / "shapes", classes=3, per_class=30)


@pytest.mark.slow
def test_an_image_folder_trains_above_chance_with_its_class_names(here, image_folder):
    code = cli("train", "dataset=image_folder", f"dataset.root={image_folder}", "dataset.name=shapes",
               "dataset.image_size=16", *QUICK, f"output_root={here / 'out'}")
    result = trained(here / "out")
    assert code == 0 and result["status"] == "finished"
    assert result["spec"]["name"].startswith("shapes-cnn-ce-lam0-seed0-")
    assert result["test_accuracy"] > 2 * 100 / 3  # chance is 33 %
    data = result["data"]
    assert data["class_names"] == ["class_a0", "class_b1", "class_c2"] and data["num_classes"] == 3
    assert data["shape"] == [3, 16, 16] and result["num_test"] == 18  # 20 % of 30 per class
    assert len(data["mean"]) == 3 and all(0 < m < 1 for m in data["mean"])


def test_an_image_folder_is_decoded_once(tmp_path, image_folder, monkeypatch):
    cfg = {"name": "image_folder", "root": str(image_folder), "image_size": [12, 20], "channels": 1}
    first = load_raw(cfg)
    assert first.train_x.shape[1:] == (1, 12, 20) and len(first.train_y) + len(first.test_y) == 90
    assert np.bincount(first.test_y).tolist() == [6, 6, 6]  # stratified
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("decoded again"))
    again = load_raw(cfg)
    assert np.array_equal(first.train_x, again.train_x) and np.array_equal(first.test_y, again.test_y)


def test_train_and_test_folders_are_the_split(tmp_path):
    root = write_image_folder(tmp_path / "split", classes=3, per_class=4, splits=("train", "test"))
    raw = load_raw({"name": "image_folder", "root": str(root), "image_size": 8})
    assert len(raw.train_y) == 12 and len(raw.test_y) == 12 and raw.num_classes == 3


def test_an_edited_image_is_other_data(tmp_path):
    from latentexp.data.identity import data_fingerprint

    root = write_image_folder(tmp_path / "f", classes=2, per_class=3)
    cfg = {"name": "image_folder", "root": str(root)}
    before = data_fingerprint(build_source(cfg), "image_folder")
    picture = next(root.glob("*/img1.png"))
    Image.fromarray(255 - np.asarray(Image.open(picture))).save(picture)
    assert data_fingerprint(build_source(cfg), "image_folder") != before


@pytest.mark.slow
@pytest.mark.parametrize("layout, floats", [("NHWC", False), ("NCHW", True)])
def test_an_npz_trains_above_chance(here, layout, floats):
    path = write_arrays(here / "data.npz", layout=layout, floats=floats,
                        class_names=np.array(["x", "y", "z"]))
    code = cli("train", "dataset=arrays", f"dataset.path={path}", *QUICK, f"output_root={here / 'out'}")
    result = trained(here / "out")
    assert code == 0 and result["test_accuracy"] > 2 * 100 / 3
    assert result["data"]["class_names"] == ["x", "y", "z"] and result["data"]["shape"] == [3, 12, 12]


def test_npz_layouts_and_dtypes_read_the_same_pixels(tmp_path):
    a = load_raw({"name": "arrays", "path": str(write_arrays(tmp_path / "a.npz", layout="NHWC"))})
    b_path = write_arrays(tmp_path / "b.npz", layout="NCHW", floats=True)
    b = load_raw({"name": "arrays", "path": str(b_path)})
    assert a.train_x.shape == (120, 3, 12, 12) and a.train_x.dtype == np.uint8
    assert np.array_equal(a.train_x, b.train_x) and a.num_classes == 3 and a.class_names is None


@pytest.mark.slow
def test_a_torchvision_class_reads_its_own_files(here, data_root):
    """KMNIST through torchvision's loader, from IDX files where torchvision keeps them."""
    write_fashion_mnist(here / "kmnist" / "KMNIST" / "raw", n_train=300, n_test=100, gz=False)
    code = cli("train", "dataset=torchvision", "dataset.class_name=KMNIST", f"dataset.root={here / 'kmnist'}",
               "dataset.download=false", *QUICK, f"output_root={here / 'out'}")
    result = trained(here / "out")
    assert code == 0 and result["spec"]["dataset"] == "KMNIST" and result["test_accuracy"] > 30
    assert result["data"]["num_classes"] == 10 and result["data"]["class_names"][0] == "o"


def test_torchvision_kwargs_reach_the_class(tmp_path):
    write_fashion_mnist(tmp_path / "KMNIST" / "raw", n_train=30, n_test=10, gz=False)
    source = build_source({"name": "KMNIST", "class_name": "KMNIST", "root": str(tmp_path), "download": False,
                           "_target_": "latentexp.data.torchvision_dataset.TorchvisionDataset",
                           "kwargs": {"no_such_argument": 1}})
    with pytest.raises(DataError, match="no_such_argument"):
        source.load()


def test_means_and_deviations_come_from_the_training_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5000, 3, 4, 4), dtype=np.uint8)
    mean, std = training_statistics(images)
    scaled = images / 255.0
    assert np.allclose(mean, scaled.mean(axis=(0, 2, 3)), atol=1e-12)
    assert np.allclose(std, scaled.std(axis=(0, 2, 3)), atol=1e-9)


def test_data_larger_than_memory_is_refused_with_its_size(tmp_path, monkeypatch):
    from latentexp.data import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1000)
    path = write_arrays(tmp_path / "big.npz")
    with pytest.raises(DataError, match=r"needs 0\.00 GiB .* has 0\.00 GiB free"):
        load_raw({"name": "arrays", "path": str(path)})


def _broken_folders(tmp):
    one = write_image_folder(tmp / "one", classes=1, per_class=3)
    empty = write_image_folder(tmp / "empty", classes=2, per_class=3)
    for f in next(empty.iterdir()).iterdir():
        f.unlink()
    unreadable = write_image_folder(tmp / "unreadable", classes=2, per_class=3)
    (next(unreadable.iterdir()) / "broken.png").write_bytes(b"not a png")
    return {"missing": (tmp / "nowhere", "is not a folder"), "one class": (one, "at least 2"),
            "empty class": (empty, "holds no image"), "unreadable": (unreadable, "broken.png")}


def _broken_arrays(tmp):
    return {"missing keys": (write_arrays(tmp / "keys.npz", n_train=6, n_test=3), "lacks test_y"),
            "lengths": (write_arrays(tmp / "len.npz", n_train=6, n_test=3), "train_x has shape")}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "one class", "empty class", "unreadable", "missing keys",
                                  "lengths"])
def test_bad_data_is_one_paragraph_and_exit_2_before_any_work(here, capsys, case):
    folders, arrays = _broken_folders(here), _broken_arrays(here)
    if case == "missing keys":
        np.savez(arrays[case][0], **{k: v for k, v in np.load(arrays[case][0]).items() if k != "test_y"})
    if case == "lengths":
        data = dict(np.load(arrays[case][0]))
        np.savez(arrays[case][0], **{**data, "train_y": data["train_y"][:-1]})
    path, message = {**folders, **arrays}[case]
    setting = ["dataset=arrays", f"dataset.path={path}"] if case in arrays else \
        ["dataset=image_folder", f"dataset.root={path}"]
    code = cli("train", *setting, *QUICK, f"output_root={here / 'out'}")
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (here / "out" / "runs").exists() or not any((here / "out" / "runs").iterdir())


def test_every_dataset_file_starts_from_the_split_keys_the_trainer_reads():
    from latentexp.config.tree import compose, config_dir, config_groups
    from latentexp.data.datasets import SPLIT_KEYS

    shared = (Path(config_dir()) / "dataset_splits.yaml").read_text()
    assert [line.split(":")[0] for line in shared.splitlines() if line and not line.startswith("#")] == list(
        SPLIT_KEYS)
    for name in config_groups()["dataset"]:
        text = (Path(config_dir()) / "dataset" / f"{name}.yaml").read_text()
        assert "- /dataset_splits@_here_" in text, name
        assert set(SPLIT_KEYS) <= set(compose([f"dataset={name}"]).dataset), name
