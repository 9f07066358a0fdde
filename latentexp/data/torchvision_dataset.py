"""``dataset=torchvision dataset.class_name=KMNIST``: any torchvision image-classification dataset
class, read through its own loader (and its download, where ``download`` allows), decoded once to
uint8 arrays and cached (latentexp.data.decoded).

The class is built twice, for the train and the test split, with ``train=True/False`` or
``split="train"/"test"`` (whichever it takes), ``root``, ``download`` and ``kwargs``
(``+dataset.kwargs.split=balanced`` for EMNIST). Its root is ``dataset.root``, or
``<data root>/<class_name>`` (./data or $LATENTEXP_DATA): the fingerprint covers every file
under it, so give each dataset a folder of its own.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from pathlib import Path
from typing import Any

import numpy as np

from latentexp.data import sources
from latentexp.data.datasets import DataSource
from latentexp.data.decoded import cached_decode, image_size_pair, to_array
from latentexp.data.fingerprint import fingerprint
from latentexp.data.image_folder import GREY_MODES
from latentexp.data.raw import RawDataset, count_classes
from latentexp.errors import DataError

log = logging.getLogger("latentexp")


def dataset_class(class_name: str) -> type:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, str(class_name), None)
    if not inspect.isclass(cls):
        known = sorted(n for n in torchvision.datasets.__all__ if n[0].isupper())
        raise DataError(f"dataset.class_name={class_name} is not a torchvision dataset class; torchvision "
                        f"{torchvision.__version__} has {', '.join(known)}.")
    return cls


class TorchvisionDataset(DataSource):
    def __init__(self, class_name: str | None = None, root: str | None = None, download: bool = True,
                 kwargs: dict[str, Any] | None = None, image_size: int | list[int] | None = None,
                 channels: int | None = None):
        if class_name is None:
            raise DataError("dataset=torchvision needs the class: dataset.class_name=KMNIST (any class of "
                            "torchvision.datasets).")
        self.class_name, self.download, self.kwargs = str(class_name), download, dict(kwargs or {})
        base = Path(root) if root is not None else sources.data_roots(None)[0] / self.class_name
        self.root = base.expanduser().resolve()
        self.image_size, self.channels = image_size_pair(image_size), channels

    def files(self) -> dict[str, Path] | None:
        if not self.root.is_dir():
            return None
        found = {p.relative_to(self.root).as_posix(): p for p in sorted(self.root.rglob("*")) if p.is_file()}
        return found or None

    def _split_arguments(self, cls: type, split: str) -> dict[str, Any]:
        params = inspect.signature(cls).parameters
        chosen = {"train": split == "train"} if "train" in params else {"split": split} if "split" in params \
            else None
        if chosen is None:
            raise DataError(f"torchvision's {self.class_name} takes neither train= nor split=, so latentexp "
                            "cannot read its train and test splits; use dataset=image_folder or "
                            "dataset=arrays.")
        clash = set(chosen) & set(self.kwargs)
        if clash:
            raise DataError(f"dataset.kwargs.{clash.pop()} chooses the split, which latentexp sets itself "
                            "(train, then test); remove it.")
        if "download" in params:
            chosen["download"] = self.download
        return chosen

    def _open(self, cls: type, split: str):
        arguments = self._split_arguments(cls, split)
        existed = _existing_folders(self.root)
        try:
            return cls(str(self.root), **arguments, **self.kwargs)
        except DataError:
            raise
        except Exception as err:  # torchvision's loaders raise RuntimeError, ValueError, OSError, ...
            _remove_empty_folders(self.root, existed)  # what a failed download left behind
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            if arguments.get("download"):
                advice = ("Its download was on and did not bring them: connect this machine to the "
                          "internet, or fetch the files elsewhere and put them there (dataset.root=DIR).")
            else:
                advice = ("Put its files there (dataset.root=DIR), or allow its download "
                          "(dataset.download=true) on a machine with internet access.")
            raise DataError(f"torchvision's {self.class_name} could not read its {split} split from "
                            f"{self.root}: {reason}. {advice}") from None

    def load(self) -> RawDataset:
        cls = dataset_class(self.class_name)
        files = self.files()
        if files is None:
            self._open(cls, "train")  # downloads where allowed, or says what is missing
            files = self.files()
        if files is None:
            raise DataError(f"{self.root} holds no files of torchvision's {self.class_name}; put them there.")
        settings = {"source": "torchvision", "class": self.class_name, "kwargs": self.kwargs,
                    "data": fingerprint(files), "image_size": self.image_size, "channels": self.channels}
        return cached_decode(settings, str(self.root), lambda: self._decode(cls))

    def _decode(self, cls: type) -> RawDataset:
        from tqdm import tqdm

        arrays, shape, names = {}, None, None
        for split in ("train", "test"):
            ds = self._open(cls, split)
            names = names or [str(c) for c in getattr(ds, "classes", None) or []] or None
            x, y = [], np.empty(len(ds), dtype=np.int64)
            for i in tqdm(range(len(ds)), desc=f"decoding {self.class_name} "
                                               f"{split}", unit="img", disable=None):
                image, target = ds[i]
                if not hasattr(image, "convert") or not isinstance(target, (int, np.integer)) and not (
                        hasattr(target, "ndim") and target.ndim == 0):
                    raise DataError(f"torchvision's {self.class_name} gives {type(image).__name__} and "
                                    f"{type(target).__name__}, not an image and a class label: it is not an "
                                    "image-classification dataset latentexp can train on.")
                shape = shape or self._shape(image)
                if self.image_size is None and image.size != (shape[2], shape[1]):
                    raise DataError(f"{self.class_name}'s images differ in size ({shape[1]}x{shape[2]} and "
                                    f"{image.size[1]}x{image.size[0]}); set dataset.image_size=32 or [h, w].")
                if shape[0] == 1 and image.mode not in GREY_MODES and self.channels is None:
                    raise DataError(f"{self.class_name} mixes grey and colour images; set dataset.channels=3 "
                                    "(or 1 to make them all grey).")
                x.append(to_array(image, shape[1:], shape[0]))
                y[i] = int(target)
            arrays[split] = (np.stack(x), y)
        k = count_classes(f"{self.class_name} in {self.root}", arrays["train"][1], arrays["test"][1])
        if names is not None and len(names) != k:
            names = None if len(names) < k else names[:k]
        return RawDataset(*arrays["train"], *arrays["test"], num_classes=k, source=str(self.root),
                          class_names=names)

    def _shape(self, image) -> tuple[int, int, int]:
        channels = self.channels or (1 if image.mode in GREY_MODES else 3)
        height, width = self.image_size or (image.size[1], image.size[0])
        return channels, height, width


def _existing_folders(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_dir()} | {root} if root.is_dir() else set()


def _remove_empty_folders(root: Path, existed: set[Path]) -> None:
    """Remove the folders a failed open created and left empty (a ``raw/`` of a download that
    reached nothing), deepest first; never one that existed before or holds a file."""
    if not root.exists():
        return
    made = sorted((p for p in [root, *root.rglob("*")] if p.is_dir() and p not in existed),
                  key=lambda p: len(p.parts), reverse=True)
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only an empty one goes
