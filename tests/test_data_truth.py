"""No result that lies about its data: a file rewritten behind a copy tool's back (same size, same
modification time) is other data, the image-folder layouts latentexp does not read are refused,
16-bit images keep their contrast, and a single-class .npz is refused."""

import os
from pathlib import Path

import numpy as np
import pytest
from support.datasets import write_arrays

from latentexp.config.tree import compose
from latentexp.data.fingerprint import file_digests
from latentexp.errors import DataError
from latentexp.io import file_stamp
from latentexp.launch.training import run
from latentexp.runs.spec import RunSpec
from latentexp.train import Trainer

TINY = ("trainer.max_epochs=2", "trainer.batch_size=32", "model=ffnn", "device=cpu")


def arrays_cfg(path, tmp_path):
    return compose(["dataset=arrays", f"dataset.path={path}", f"output_root={tmp_path / 'out'}", *TINY])


def rewrite_keeping_size_and_mtime(path, arrays):
    """What `cp -p`, `rsync -t` or an archive restore leave: other bytes, the same size and mtime."""
    before = os.stat(path)
    size = before.st_size
    np.savez(path, **arrays)
    assert os.stat(path).st_size == size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns


def altered_npz(path, change):
    """An .npz of write_arrays with ``change(arrays)`` applied in place: a defect planted."""
    write_arrays(path)
    with np.load(path) as f:
        arrays = dict(f)
    change(arrays)
    np.savez(path, **arrays)
    return path


def refused_npz(path, change, says):
    from latentexp.data.arrays import Arrays

    with pytest.raises(DataError, match=says):
        Arrays(str(altered_npz(path, change))).load()


def permuted_labels(path):
    with np.load(path) as f:
        arrays = dict(f)
    arrays["train_y"] = (arrays["train_y"] + 1) % 3
    return arrays


def test_a_rewritten_file_with_its_size_and_mtime_restored_is_hashed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTEXP_CACHE", str(tmp_path / "cache"))
    path = write_arrays(tmp_path / "data.npz")
    first = file_digests([path])[path]
    rewrite_keeping_size_and_mtime(path, permuted_labels(path))
    assert file_digests([path])[path] != first  # neither this process's memory nor the cache file
    assert file_stamp(path)[3] == os.stat(path).st_ino


def test_a_file_system_without_inodes_caches_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTEXP_CACHE", str(tmp_path / "cache"))
    path = write_arrays(tmp_path / "data.npz")
    monkeypatch.setattr("latentexp.data.fingerprint.file_stamp", lambda p: None)
    hashed = []
    real = __import__("latentexp.data.fingerprint", fromlist=["_sha256"])._sha256
    monkeypatch.setattr("latentexp.data.fingerprint._sha256", lambda p: hashed.append(p) or real(p))
    file_digests([path])
    file_digests([path])
    assert len(hashed) == 2 and not (tmp_path / "cache" / "file_digests.json").exists()


@pytest.mark.slow
def test_the_same_command_on_a_rewritten_npz_is_another_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTEXP_CACHE", str(tmp_path / "cache"))
    path = write_arrays(tmp_path / "data.npz")
    first = run(arrays_cfg(path, tmp_path))
    rewrite_keeping_size_and_mtime(path, permuted_labels(path))
    second = run(arrays_cfg(path, tmp_path))
    assert second["spec"]["name"] != first["spec"]["name"]
    assert second["epochs_run"] == 2  # trained, not "already finished"


@pytest.mark.slow
def test_a_killed_run_never_resumes_onto_a_file_rewritten_with_its_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTEXP_CACHE", str(tmp_path / "cache"))
    path = write_arrays(tmp_path / "data.npz")
    original_save = Trainer.save

    def die_after_epoch_1(self):
        original_save(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save", die_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        run(arrays_cfg(path, tmp_path))
    monkeypatch.setattr(Trainer, "save", original_save)
    killed = RunSpec.from_config(arrays_cfg(path, tmp_path)).files
    rewrite_keeping_size_and_mtime(path, permuted_labels(path))
    other = run(arrays_cfg(path, tmp_path))
    assert other["spec"]["name"] != killed.name and other["epochs_run"] == 2  # from epoch 1, not resumed
    assert killed.state() == "resumable (after epoch 1)"


def image_folder(root, splits, classes=2, per_class=3, mode="L"):
    from PIL import Image

    for split in splits:
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(np.full((8, 8), 40 * label + i, np.uint8), mode).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize("splits,says", [
    (("train", "val"), "holds the split folder(s) train/, val/, not train/ with test/"),
    (("training", "testing"), "holds the split folder(s) testing/, training/"),
    (("train", "val", "test"), "holds val/ beside train/ and test/"),
])
def test_split_folders_other_than_train_and_test_are_refused(tmp_path, splits, says):
    from latentexp.data.image_folder import ImageFolder

    root = image_folder(tmp_path / "images", splits)
    with pytest.raises(DataError, match=says.replace("(", r"\(").replace(")", r"\)")):
        ImageFolder(str(root)).load()


def test_train_and_test_folders_and_class_folders_still_load(tmp_path, monkeypatch):
    from latentexp.data.image_folder import ImageFolder

    monkeypatch.setenv("LATENTEXP_CACHE", str(tmp_path / "cache"))
    split = ImageFolder(str(image_folder(tmp_path / "split", ("train", "test")))).load()
    assert split.num_classes == 2 and len(split.train_y) == len(split.test_y) == 6
    flat = ImageFolder(str(image_folder(tmp_path / "flat", ("",), per_class=5)), test_fraction=0.4).load()
    assert flat.class_names == ["class0", "class1"] and len(flat.test_y) == 4


def test_sixteen_bit_images_keep_their_contrast(tmp_path, monkeypatch):
    """PIL's own conversion clips a 16-bit grey PNG to {0, 255}: a run would train on noise."""
    from PIL import Image

    from latentexp.data.image_folder import ImageFolder

    monkeypatch.setenv("LATENTEXP_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "sixteen"
    values = np.array([[0, 257 * 60], [30000, 65535]], np.uint16)
    for split in ("train", "test"):
        for label in range(2):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True)
            Image.fromarray(values).save(folder / "a.png")
            assert Image.open(folder / "a.png").mode in ("I;16", "I")
    raw = ImageFolder(str(root)).load()
    assert raw.train_x[0, 0].tolist() == [[0, 60], [117, 255]]  # value / 257, rounded


def test_floating_point_images_are_refused(tmp_path):
    from PIL import Image

    from latentexp.data.image_folder import ImageFolder

    root = tmp_path / "floats"
    for label in range(2):
        folder = root / f"c{label}"
        folder.mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(folder / f"{i}.tif")
    with pytest.raises(DataError, match="floating-point pixels"):
        ImageFolder(str(root)).load()


def test_an_npz_of_one_class_is_refused(tmp_path):
    from latentexp.data.arrays import Arrays

    path = write_arrays(tmp_path / "one.npz", classes=1)
    with pytest.raises(DataError, match="holds a single class"):
        Arrays(str(path)).load()


def test_a_huge_label_is_refused_without_allocating_its_classes(tmp_path):
    refused_npz(tmp_path / "huge.npz", lambda a: a["train_y"].__setitem__(0, 2**40),
                "Class 3 of .* has no training sample")


def test_train_and_test_images_of_different_shapes_are_refused_before_training(tmp_path):
    def smaller_test_images(arrays):  # 10x10 test images beside 12x12 training ones
        arrays["test_x"] = arrays["test_x"][:, :, :10, :10]

    refused_npz(tmp_path / "shapes.npz", smaller_test_images,
                r"training images .* are 3x12x12 .* and the test images 3x10x10")


@pytest.mark.parametrize("label", [np.inf, np.nan])
def test_a_non_finite_label_is_refused_as_such(tmp_path, label):
    def planted(arrays):
        arrays["train_y"] = arrays["train_y"].astype(np.float64)
        arrays["train_y"][0] = label

    refused_npz(tmp_path / "inf.npz", planted, "train_y is float64; labels are integers 0..K-1")


def test_object_labels_are_refused_without_unpickling(tmp_path):
    def as_objects(arrays):
        arrays["train_y"] = np.array([int(v) for v in arrays["train_y"]], dtype=object)

    refused_npz(tmp_path / "objects.npz", as_objects, r"train_y hold\(s\) Python objects \(dtype object\)")


def test_a_decompression_bomb_is_named_not_a_traceback(tmp_path, monkeypatch):
    from PIL import Image

    from latentexp.data.image_folder import ImageFolder

    root = image_folder(tmp_path / "bombs", ("",), per_class=5)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # an 8x8 image is then "a bomb" (> 2 x 10 pixels)
    with pytest.raises(DataError, match=r"0\.png is not an image PIL can read .*decompression bomb"):
        ImageFolder(str(root)).load()


@pytest.mark.parametrize("size", ["0", "-4", "[0,3]"])
def test_an_image_size_below_one_is_refused(tmp_path, size):
    from latentexp.errors import ConfigError
    from latentexp.launch.validation import validate_config

    cfg = compose(["dataset=image_folder", f"dataset.root={tmp_path}", f"dataset.image_size={size}"])
    with pytest.raises(ConfigError, match="dataset.image_size=.* each at least 1"):
        validate_config(cfg)


def test_the_paper_cnn_refuses_images_it_would_pool_away():
    from latentexp.config.components import build_model
    from latentexp.errors import ConfigError

    with pytest.raises(ConfigError, match="needs images of at least 4x4 pixels; these are 1x1"):
        build_model("cnn", 1, (1, 1), 10)
    build_model("cnn", 1, (4, 4), 10)  # the smallest it takes


@pytest.mark.parametrize("download", [True, False])
def test_a_torchvision_dataset_that_cannot_be_fetched_says_so_and_leaves_nothing(tmp_path, monkeypatch,
                                                                                 download):
    from latentexp.data import torchvision_dataset

    class Offline:
        """What torchvision's downloading classes do without a network: make raw/, then fail."""

        def __init__(self, root, train=True, download=False):
            (Path(root) / "Offline" / "raw").mkdir(parents=True, exist_ok=True)
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz" if download else
                               "Dataset not found. You can use download=True to download it")

    monkeypatch.setattr(torchvision_dataset, "dataset_class", lambda name: Offline)
    root = tmp_path / "data"
    source = torchvision_dataset.TorchvisionDataset("Offline", root=str(root), download=download)
    with pytest.raises(DataError) as refused:
        source.load()
    said = str(refused.value)
    if download:
        assert "Its download was on and did not bring them" in said and "allow its download" not in said
    else:
        assert "allow its download (dataset.download=true)" in said
    assert not root.exists()  # no empty raw/ (nor its parents) left behind


def test_the_same_npz_under_another_name_is_the_same_data(tmp_path):
    import shutil

    from latentexp.config.components import build_source
    from latentexp.data.identity import data_fingerprint

    first = write_arrays(tmp_path / "data.npz")
    second = tmp_path / "elsewhere" / "renamed.npz"
    second.parent.mkdir()
    shutil.copy(first, second)
    prints = [data_fingerprint(build_source({"_target_": "latentexp.data.arrays.Arrays", "name": "arrays",
                                             "path": str(p)}), "arrays") for p in (first, second)]
    assert prints[0] == prints[1]
