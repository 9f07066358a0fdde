"""Write small datasets in the exact on-disk formats the loaders read (IDX, CIFAR pickles)."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x00 0x00 0x08 ndim, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def class_images(labels: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Noisy images whose mean brightness pattern depends on the class, so models can learn."""
    n = len(labels)
    base = rng.integers(0, 60, size=(n, *shape))
    stripe = (labels[:, None] * 7) % shape[-1]
    cols = np.arange(shape[-1])[None, :]
    mask = (np.abs(cols - stripe) <= 1)  # (n, W)
    base = base + 180 * mask.reshape(n, *([1] * (len(shape) - 1)), shape[-1])
    return np.clip(base, 0, 255).astype(np.uint8)


def write_fashion_mnist(directory: Path, n_train: int = 600, n_test: int = 200, gz: bool = True,
                        seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        arrays[f"{split}-images-idx3-ubyte"] = class_images(labels, (28, 28), rng)
        arrays[f"{split}-labels-idx1-ubyte"] = labels.astype(np.uint8)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return directory


def _cifar_entry(labels: np.ndarray, rng: np.random.Generator, label_key: str, extra=None) -> dict:
    images = class_images(labels, (3, 32, 32), rng).reshape(len(labels), -1)
    entry = {"batch_label": b"test", "data": images, label_key: labels.tolist(),
             "filenames": [f"img{i}.png" for i in range(len(labels))]}
    entry.update(extra or {})
    return entry


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 40, seed: int = 0) -> Path:
    """torchvision's cifar-10-batches-py layout: data_batch_1..5, test_batch, batches.meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", _cifar_entry(np.arange(per_batch) % 10, rng, "labels"))
    _dump(folder / "test_batch", _cifar_entry(np.arange(n_test) % 10, rng, "labels"))
    _dump(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    return root


def write_cifar100(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """torchvision's cifar-100-python layout: train, test, meta; fine and coarse labels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = np.arange(n) % 100
        _dump(folder / name, _cifar_entry(fine, rng, "fine_labels", {"coarse_labels": (fine // 5).tolist()}))
    _dump(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                            "coarse_label_names": [f"c{i}" for i in range(20)]})
    return root


def write_svhn(directory: Path, n_train: int = 60, n_test: int = 30, seed: int = 0) -> Path:
    """SVHN's cropped-digit .mat files: X is (32, 32, 3, N) uint8, y is (N, 1) with 10 for digit 0."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        digits = np.arange(n) % 10
        images = class_images(digits, (3, 32, 32), rng).transpose(2, 3, 1, 0)  # (H, W, C, N)
        savemat(directory / f"{split}_32x32.mat",
                {"X": images, "y": np.where(digits == 0, 10, digits).reshape(-1, 1).astype(np.uint8)})
    return directory


def class_picture(label: int, classes: int, height: int, width: int, rng: np.random.Generator,
                  colour: bool) -> np.ndarray:
    """A noisy picture whose bright band sits at a height set by the class, at any size."""
    rows = np.arange(height)[:, None]
    centre = (label + 0.5) / classes * height
    band = np.abs(rows - centre) <= max(1.0, height / (3 * classes))
    image = rng.integers(0, 60, size=(height, width)) + 190 * band
    image = np.clip(image, 0, 255).astype(np.uint8)
    return np.stack([image, image // 2, image], axis=-1) if colour else image


def write_image_folder(root: Path, classes: int = 3, per_class: int = 30, seed: int = 0,
                       splits: tuple[str, ...] = ()) -> Path:
    """Class folders of PNG and JPEG pictures of varying sizes, grey and colour; under train/ and
    test/ when ``splits`` names them (``per_class`` each), else directly under ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in splits or ("",):
        for label in range(classes):
            folder = root / split / f"class_{'abc'[label % 3]}{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                height, width = int(rng.integers(16, 40)), int(rng.integers(16, 40))
                picture = class_picture(label, classes, height, width, rng, colour=i % 2 == 0)
                suffix = ".png" if i % 3 else ".jpg"
                Image.fromarray(picture).save(folder / f"img{i}{suffix}", quality=95)
    return root


def write_arrays(path: Path, n_train: int = 120, n_test: int = 60, classes: int = 3, size: int = 12,
                 seed: int = 0, layout: str = "NCHW", floats: bool = False, **extra) -> Path:
    """An .npz of learnable images (a class's band) and labels, in the layout and dtype asked."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % classes
        x = np.stack([class_picture(int(label), classes, size, size, rng, colour=True)
                      for label in y])  # NHWC
        x = x if layout == "NHWC" else x.transpose(0, 3, 1, 2)
        arrays[f"{split}_x"] = x.astype(np.float32) / 255 if floats else x
        arrays[f"{split}_y"] = y
    arrays.update(extra)
    np.savez(path, **arrays)
    return path
