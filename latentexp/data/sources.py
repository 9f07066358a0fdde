"""Find and load the raw datasets as uint8 NCHW arrays.

Fashion-MNIST and MNIST are read from IDX files found on a search path (the Debian package
``dataset-fashion-mnist`` installs Fashion-MNIST in /usr/share/datasets/fashion-mnist); CIFAR-10,
CIFAR-100 and SVHN go through torchvision's loaders (their file formats, md5 checks and download).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np

from latentexp.data.idx import read_idx
from latentexp.data.raw import RawDataset
from latentexp.data.safe_pickle import load_arrays_only
from latentexp.errors import DataError
from latentexp.io import open_regular

log = logging.getLogger("latentexp")

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def data_roots(root: str | None) -> list[Path]:
    """The user-given root, $LATENTEXP_DATA, then ./data; resolved, duplicates removed."""
    roots = [root, os.environ.get("LATENTEXP_DATA"), "data"]
    out: list[Path] = []
    for r in roots:
        if r:
            p = Path(r).expanduser().resolve()
            if p not in out:
                out.append(p)
    return out


def _missing_message(name: str, searched: list[Path], how: str, reason: str = "") -> str:
    paths = ", ".join(str(p) for p in searched)
    tail = f" The download failed: {reason}." if reason else ""
    return f"Dataset {name} was not found. Searched: {paths}.{tail} {how}"


# ---------------------------------------------------------------- Fashion-MNIST


def _idx_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
DIGITS = [str(d) for d in range(10)]

# name -> (subfolders searched under each data root, torchvision class, how to get it)
IDX_DATASETS = {
    "fashion_mnist": (("fashion_mnist", "fashion-mnist", "FashionMNIST/raw"), "FashionMNIST",
                      "Install it with `apt-get install dataset-fashion-mnist` (Debian), or put"),
    "mnist": (("mnist", "MNIST/raw"), "MNIST", "Put"),
}


def idx_dirs(name: str, root: str | None) -> list[Path]:
    subfolders = IDX_DATASETS[name][0]
    dirs = []
    for r in data_roots(root):
        dirs += [r, *(r / s for s in subfolders)]
    return dirs + ([DEBIAN_FASHION_MNIST] if name == "fashion_mnist" else [])


def load_fashion_mnist(root: str | None = None, download: bool = True) -> RawDataset:
    return load_idx_dataset("fashion_mnist", root, download)


def load_idx_dataset(name: str, root: str | None = None, download: bool = True) -> RawDataset:
    """Fashion-MNIST or MNIST from the four IDX files, plain or gzip."""
    subfolders, torchvision_class, how = IDX_DATASETS[name]
    searched = idx_dirs(name, root)
    found = _find_idx_files(searched)
    reason = ""
    if found is None and download:
        target = data_roots(root)[0]
        try:
            import torchvision.datasets

            cls = getattr(torchvision.datasets, torchvision_class)
            cls(str(target), train=True, download=True)
            cls(str(target), train=False, download=True)
        except Exception as e:  # network errors come in many types
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        found = _find_idx_files(searched)
    if found is None:
        raise DataError(
            _missing_message(
                name,
                searched,
                f"{how} the four IDX files (train-images-idx3-ubyte[.gz], ...) in ./data/{subfolders[0]} "
                "or in the directory given by dataset.root=... or $LATENTEXP_DATA.",
                reason,
            )
        )
    arrays = {key: read_idx(path) for key, path in found.items()}
    for key in ("train_x", "test_x"):
        if arrays[key].ndim != 3:
            raise DataError(
                f"{found[key]} holds an array of shape {arrays[key].shape}; {name} images "
                "must be (N, 28, 28). Fetch the dataset again."
            )
    return RawDataset(
        train_x=arrays["train_x"][:, None].astype(np.uint8),
        train_y=arrays["train_y"].astype(np.int64),
        test_x=arrays["test_x"][:, None].astype(np.uint8),
        test_y=arrays["test_y"].astype(np.int64),
        num_classes=10,
        source=str(found["train_x"].parent),
        class_names=FASHION_MNIST_CLASSES if name == "fashion_mnist" else DIGITS,
    )


def _find_idx_files(dirs: list[Path]) -> dict[str, Path] | None:
    for d in dirs:
        files = {key: _idx_file(d, stem) for key, stem in FASHION_MNIST_FILES.items()}
        if all(files.values()):
            return files  # type: ignore[return-value]
    return None


# ---------------------------------------------------------------- CIFAR and SVHN (torchvision)

CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _without_md5(base: type) -> type:
    """torchvision's loader with its md5 check reduced to "the file exists", for deliberate
    subsets and for test files."""
    if hasattr(base, "split_list"):  # SVHN: split -> [url, filename, md5]
        attrs = {"split_list": {k: [url, f, None] for k, (url, f, _) in base.split_list.items()}}
    else:  # CIFAR
        attrs = {
            "train_list": [[f, None] for f, _ in base.train_list],
            "test_list": [[f, None] for f, _ in base.test_list],
            "meta": {**base.meta, "md5": None},
        }
    return type(f"{base.__name__}NoMD5", (base,), attrs)


def _torchvision_cifar(name: str, verify_md5: bool):
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if name == "cifar10" else CIFAR100
    return base if verify_md5 else _without_md5(base)


def load_cifar(
    name: str,
    root: str | None = None,
    download: bool = True,
    verify_md5: bool = True,
    label_set: str = "fine",
) -> RawDataset:
    folder = CIFAR_FOLDERS[name]
    roots = data_roots(root)
    found = next((r for r in roots if (r / folder).is_dir()), None)
    reason = ""
    if found is None and download:
        target = roots[0]
        try:
            _torchvision_cifar(name, verify_md5)(str(target), train=True, download=True)
            found = target
        except Exception as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    if found is None:
        raise DataError(
            _missing_message(
                name,
                [r / folder for r in roots],
                f"Put torchvision's '{folder}' folder under ./data, dataset.root=... or "
                "$LATENTEXP_DATA, or run `python scripts/fetch_data.py "
                f"{name}` on a machine with internet access.",
                reason,
            )
        )
    cls = _torchvision_cifar(name, verify_md5)
    with _private_copy(cls, found / folder) as private:
        if not verify_md5:
            _check_unverified_pickles(cls, private / folder, found / folder)
        return _read_cifar(cls, name, private, found / folder, label_set)


def _read_cifar(cls: type, name: str, private: Path, source: Path, label_set: str) -> RawDataset:
    """CIFAR from ``private`` (the private copy of ``source``) through torchvision's loader."""
    folder = source.name
    splits = {}
    for train in (True, False):
        try:
            ds = cls(str(private), train=train, download=False)
        except RuntimeError as e:
            # Never a hint to turn the md5 check off: these are files this tool did not fetch.
            raise DataError(
                f"{source} is incomplete, corrupt or not CIFAR's published files (a file is "
                f"missing or its md5 differs: {e}). Delete it and fetch the dataset again (`python "
                f"scripts/fetch_data.py {name}`, or dataset.download=true with an empty dataset.root)."
            ) from None
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as e:
            raise DataError(
                f"{source} holds a file that is not in CIFAR's format ({type(e).__name__}: "
                f"{e}). Delete it and fetch the dataset again."
            ) from None
        x = np.ascontiguousarray(np.asarray(ds.data, dtype=np.uint8).transpose(0, 3, 1, 2))
        y = np.asarray(ds.targets, dtype=np.int64)
        names = list(ds.classes)
        if name == "cifar100" and label_set == "coarse":
            y, names = _cifar100_coarse(private / folder, train)
        splits[train] = (x, y)
    return RawDataset(*splits[True], *splits[False], num_classes=len(names), source=str(source),
                      class_names=names)


def _cifar_files(cls: type) -> list[str]:
    return [f for f, _ in [*cls.train_list, *cls.test_list]] + [cls.meta["filename"]]


@contextlib.contextmanager
def _private_copy(cls: type, folder: Path):
    """The dataset's files copied into a directory only this process can write: what is checked
    (md5, arrays only) is then what is loaded, even if someone swaps a file in a shared folder in
    between. A root holding ``folder.name``; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="latentexp-cifar-") as private:
        target = Path(private) / folder.name
        target.mkdir()
        for filename in _cifar_files(cls):
            if (folder / filename).is_file():  # a missing one is torchvision's to report
                try:
                    source = open_regular(folder / filename, follow_links=True)  # data may be links
                    with source as src, open(target / filename, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                except (OSError, ValueError) as err:
                    raise DataError(f"{folder / filename} is unreadable ({err}). Delete the folder and "
                                    f"fetch the dataset again.") from None
        yield Path(private)


def _check_unverified_pickles(cls: type, private: Path, source: Path) -> None:
    """Files whose md5 nobody checked are read as arrays only first (latentexp.data.safe_pickle):
    a pickle that would run code is refused before torchvision unpickles it."""
    log.warning("dataset.verify_md5=false: reading %s without checking its files against CIFAR's "
                "published md5 (each is first checked to hold arrays only)", source)
    for filename in _cifar_files(cls):
        if (private / filename).is_file():
            load_arrays_only(private / filename, shown_as=source / filename)


def _cifar100_coarse(folder: Path, train: bool) -> tuple[np.ndarray, list[str]]:
    # torchvision reads only the fine labels; the same pickles hold the 20 superclasses and their names.
    entry = load_arrays_only(folder / ("train" if train else "test"))
    try:
        names = list(load_arrays_only(folder / "meta")["coarse_label_names"])
    except (DataError, KeyError, TypeError):
        names = [f"superclass {i}" for i in range(20)]
    return np.asarray(entry["coarse_labels"], dtype=np.int64), names


SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


def load_svhn(root: str | None = None, download: bool = True, verify_md5: bool = True) -> RawDataset:
    """SVHN's cropped digits (.mat files) through torchvision; label 10 becomes digit 0."""
    from torchvision.datasets import SVHN

    cls = SVHN if verify_md5 else _without_md5(SVHN)
    candidates = [d for r in data_roots(root) for d in (r / "svhn", r)]
    found = next((d for d in candidates if all((d / f).is_file() for f in SVHN_FILES)), None)
    reason = ""
    if found is None and download:
        target = data_roots(root)[0] / "svhn"
        try:
            for split in ("train", "test"):
                cls(str(target), split=split, download=True)
            found = target
        except Exception as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    if found is None:
        raise DataError(_missing_message(
            "svhn", candidates,
            "Put train_32x32.mat and test_32x32.mat in ./data/svhn, dataset.root=... or "
            "$LATENTEXP_DATA, or run `python scripts/fetch_data.py svhn` on a machine with internet access.",
            reason))
    splits = []
    for split in ("train", "test"):
        try:
            ds = cls(str(found), split=split, download=False)
        except (RuntimeError, ValueError, KeyError, OSError) as e:
            raise DataError(f"{found / (split + '_32x32.mat')} is incomplete or corrupt: {e} Delete it "
                            "and fetch the dataset again.") from None
        splits += [np.ascontiguousarray(ds.data, dtype=np.uint8), np.asarray(ds.labels, dtype=np.int64)]
    return RawDataset(*splits, num_classes=10, source=str(found), class_names=DIGITS)
