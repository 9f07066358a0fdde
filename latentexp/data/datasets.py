"""The ``dataset`` config group's classes: where a dataset's files are and how to read them.

A dataset node is a ``_target_`` node like a model or a loss: its class takes the keys that say
where and how to read (``root``, ``path``, ``image_size``, ...) and has ``files()`` (the files it
reads, by the names the loader gives them, for the run's data fingerprint; None where they are
not there yet) and ``load()`` (a RawDataset). The keys every dataset has (SPLIT_KEYS: the subset,
the validation share, augmentation, normalisation; conf/dataset_splits.yaml, which every dataset
file starts from) are the trainer's, read by ``latentexp.data.tensors``, and never reach the class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from latentexp.data import sources
from latentexp.data.raw import RawDataset

SPLIT_KEYS = ("limit_train", "limit_test", "val_fraction", "augment", "mean", "std")


class DataSource(ABC):
    """A dataset's files and loader; subclasses take their own settings as keyword arguments."""

    @abstractmethod
    def files(self) -> dict[str, Path] | None:
        """The files ``load`` reads, by the names the loader gives them; None where they are not
        there (yet): ``load`` then downloads them or says what is missing."""

    @abstractmethod
    def load(self) -> RawDataset:
        """The train and test splits, read (downloaded where allowed) and checked."""


class FashionMNIST(DataSource):
    """Fashion-MNIST's four IDX files, found on the search path (Debian's package, dataset.root,
    $LATENTEXP_DATA, ./data) or downloaded by torchvision."""

    dataset = "fashion_mnist"

    def __init__(self, root: str | None = None, download: bool = True):
        self.root, self.download = root, download

    def files(self) -> dict[str, Path] | None:
        found = sources._find_idx_files(sources.idx_dirs(self.dataset, self.root))
        return {path.name: path for path in found.values()} if found else None

    def load(self) -> RawDataset:
        return sources.load_idx_dataset(self.dataset, self.root, self.download)


class MNIST(FashionMNIST):
    dataset = "mnist"


class CIFAR10(DataSource):
    """torchvision's CIFAR pickles, its md5 check and its download."""

    dataset = "cifar10"

    def __init__(self, root: str | None = None, download: bool = True, verify_md5: bool = True):
        self.root, self.download, self.verify_md5 = root, download, verify_md5

    def files(self) -> dict[str, Path] | None:
        folder = sources.CIFAR_FOLDERS[self.dataset]
        base = next((r / folder for r in sources.data_roots(self.root) if (r / folder).is_dir()), None)
        cls = sources._torchvision_cifar(self.dataset, True)
        names = [f for f, _ in (*cls.train_list, *cls.test_list)] + [cls.meta["filename"]]
        files = {f"{folder}/{f}": base / f for f in names} if base else {}
        return files if files and all(p.is_file() for p in files.values()) else None

    def load(self) -> RawDataset:
        return sources.load_cifar(self.dataset, self.root, self.download, self.verify_md5)


class CIFAR100(CIFAR10):
    dataset = "cifar100"

    def __init__(self, root: str | None = None, download: bool = True, verify_md5: bool = True,
                 label_set: str = "fine"):
        super().__init__(root, download, verify_md5)
        self.label_set = label_set

    def load(self) -> RawDataset:
        return sources.load_cifar(self.dataset, self.root, self.download, self.verify_md5, self.label_set)


class SVHN(DataSource):
    """SVHN's cropped digits (.mat files) through torchvision."""

    def __init__(self, root: str | None = None, download: bool = True, verify_md5: bool = True):
        self.root, self.download, self.verify_md5 = root, download, verify_md5

    def files(self) -> dict[str, Path] | None:
        candidates = [d for r in sources.data_roots(self.root) for d in (r / "svhn", r)]
        found = next((d for d in candidates if all((d / f).is_file() for f in sources.SVHN_FILES)), None)
        return {f: found / f for f in sources.SVHN_FILES} if found else None

    def load(self) -> RawDataset:
        return sources.load_svhn(self.root, self.download, self.verify_md5)
