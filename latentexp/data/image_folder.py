"""``dataset=image_folder``: a folder of class folders of images, the layout of torchvision's
ImageFolder.

Either ``root/train/<class>/*`` and ``root/test/<class>/*``, or ``root/<class>/*`` split into train
and test by ``test_fraction`` (stratified, seeded by ``split_seed``, the same split for every run
seed). Classes are the folder names in sorted order (label i is the i-th name). Images are the
files with torchvision's image extensions, decoded by PIL (torchvision's loader) once, converted to
``channels`` and resized to ``image_size``, then cached (latentexp.data.decoded).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentexp.data.datasets import DataSource
from latentexp.data.decoded import cached_decode, image_size_pair, to_array
from latentexp.data.fingerprint import fingerprint
from latentexp.data.memory import check_fits, gib
from latentexp.data.raw import RawDataset
from latentexp.errors import DataError

log = logging.getLogger("latentexp")

# Folder names that mean a split, not a class: the layouts of other tools latentexp does not read.
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "dev", "eval", "test", "testing")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _check_split_folders(root: Path) -> None:
    """Refuse a layout of split folders other than train/ with test/ (say train/ and val/), which
    would otherwise be read as classes named "train" and "val", or leave a val/ unread."""
    splits = [p.name for p in _subfolders(root) if p.name.lower() in SPLIT_NAMES]
    both = (root / "train").is_dir() and (root / "test").is_dir()
    others = [name for name in splits if name not in ("train", "test")]
    if both and others:
        raise DataError(f"{root} holds {', '.join(f'{n}/' for n in others)} beside train/ and test/. "
                        "latentexp reads train/<class>/ and test/<class>/ and holds out its own validation "
                        "share of train/ (dataset.val_fraction), so those images would go unused without a "
                        "word. Move them into train/<class>/ (or test/<class>/), or move the folder out of "
                        f"{root}.")
    if splits and not both:
        raise DataError(f"{root} holds the split folder(s) {', '.join(f'{n}/' for n in splits)}, not train/ "
                        "with test/. latentexp reads either root/train/<class>/ with root/test/<class>/, or "
                        "root/<class>/ (a seeded, stratified test share: dataset.test_fraction), and takes "
                        "its validation share from the training images (dataset.val_fraction). Rename the "
                        "held-out folder to test/ (e.g. val/ to test/ when it is the only held-out set), or "
                        "put the class folders directly under the root.")


class ImageFolder(DataSource):
    def __init__(self, root: str | None = None, test_fraction: float = 0.2, split_seed: int = 0,
                 image_size: int | list[int] | None = None, channels: int | None = None):
        if root is None:
            raise DataError("dataset=image_folder reads a folder of class folders: give it with "
                            "dataset.root=DIR.")
        self.root = Path(root).expanduser().resolve()
        self.test_fraction, self.split_seed = test_fraction, split_seed
        self.image_size, self.channels = image_size_pair(image_size), channels

    def _layout(self) -> tuple[list[str], dict[str, list[tuple[int, Path]]]]:
        """The class names and, per split, (label, file) pairs; split "all" where there is one folder."""
        root = self.root
        if not root.is_dir():
            raise DataError(f"dataset.root={root} is not a folder. Give a folder of class folders (or of "
                            "train/ and test/ folders of class folders).")
        split_roots = {"train": root / "train", "test": root / "test"}
        _check_split_folders(root)
        if not all(p.is_dir() for p in split_roots.values()):
            split_roots = {"all": root}
        classes = [p.name for p in _subfolders(split_roots.get("train", root))]
        if len(classes) < 2:
            raise DataError(f"{split_roots.get('train', root)} holds {len(classes)} class folder(s); a "
                            "classifier needs at least 2: put each class's images in a folder named after "
                            "the class.")
        pairs: dict[str, list[tuple[int, Path]]] = {}
        for split, folder in split_roots.items():
            names = [p.name for p in _subfolders(folder)]
            unknown = sorted(set(names) - set(classes))
            if unknown:
                raise DataError(f"{folder / unknown[0]} is a class that {split_roots['train']} does not "
                                "have; the test classes must be training classes.")
            pairs[split] = []
            for label, name in enumerate(classes):
                files = _images(folder / name) if (folder / name).is_dir() else []
                if not files and split != "test":
                    raise DataError(f"{folder / name} holds no image ({', '.join(IMAGE_EXTENSIONS)}); put "
                                    "its images in it or remove the folder.")
                pairs[split] += [(label, f) for f in files]
        return classes, pairs

    def _named(self, pairs: dict[str, list[tuple[int, Path]]]) -> dict[str, Path]:
        """Every image of the layout by its path under the root (a moved copy is the same data)."""
        return {f.relative_to(self.root).as_posix(): f for split in pairs.values() for _, f in split}

    def files(self) -> dict[str, Path] | None:
        if not self.root.is_dir():
            return None  # load() says what is wrong
        return self._named(self._layout()[1])

    def load(self) -> RawDataset:
        classes, pairs = self._layout()
        files = self._named(pairs)
        settings = {"source": "image_folder", "data": fingerprint(files), "image_size": self.image_size,
                    "channels": self.channels, "split_seed": self.split_seed,
                    "test_fraction": self.test_fraction if "all" in pairs else None}
        return cached_decode(settings, str(self.root), lambda: self._decode(classes, pairs))

    def _decode(self, classes: list[str], pairs: dict[str, list[tuple[int, Path]]]) -> RawDataset:
        from PIL import Image, UnidentifiedImageError
        from tqdm import tqdm

        unreadable = (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError)

        every = list(self._named(pairs).values())
        modes, sizes = {}, {}
        for f in every:  # headers only: the channel count and whether the sizes agree
            try:
                with Image.open(f) as image:
                    modes[f], sizes[f] = image.mode, image.size
            except unreadable as err:
                raise DataError(f"{f} is not an image PIL can read ({err}); replace or remove it.") from None
        channels = self.channels or (1 if all(m in GREY_MODES for m in modes.values()) else 3)
        size = self.image_size
        if size is None:
            distinct = {}
            for f, (w, h) in sizes.items():
                distinct.setdefault((h, w), f)
            if len(distinct) > 1:
                (s1, f1), (s2, f2) = list(distinct.items())[:2]
                raise DataError(f"The images differ in size ({f1}: {s1[0]}x{s1[1]}, {f2}: {s2[0]}x{s2[1]}); "
                                "resize them to one with dataset.image_size=32 or "
                                "dataset.image_size=[64,64].")
            size = next(iter(distinct))
        check_fits(len(every) * channels * size[0] * size[1], f"{self.root}'s {len(every)} images", None,
                   "Choose a smaller dataset.image_size or fewer images.")
        log.info("decoding %d images of %s to %d x %dx%d (%s)", len(every), self.root, channels, *size,
                 gib(len(every) * channels * size[0] * size[1]))
        arrays = {}
        with tqdm(total=len(every), desc=f"decoding {self.root.name}", unit="img", disable=None) as bar:
            for split, items in pairs.items():
                x = np.empty((len(items), channels, *size), dtype=np.uint8)
                for i, (_, f) in enumerate(items):
                    try:
                        with Image.open(f) as image:
                            x[i] = to_array(image, size, channels)
                    except unreadable as err:
                        raise DataError(f"{f} could not be decoded ({err}); replace or remove it.") from None
                    bar.update()
                arrays[split] = (x, np.array([label for label, _ in items], dtype=np.int64))
        if "all" in arrays:
            arrays = self._split(*arrays["all"], classes)
        return RawDataset(*arrays["train"], *arrays["test"], num_classes=len(classes), source=str(self.root),
                          class_names=classes)

    def _split(self, x: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, tuple]:
        from sklearn.model_selection import train_test_split

        if not 0 < self.test_fraction < 1:
            raise DataError(f"dataset.test_fraction={self.test_fraction} must be in (0, 1): {self.root} has "
                            "no train/ and test/ folders, so the test images are a share of each class.")
        try:
            train, test = train_test_split(np.arange(len(y)), test_size=self.test_fraction, stratify=y,
                                           random_state=self.split_seed)
        except ValueError as err:
            counts = np.bincount(y, minlength=len(classes))
            raise DataError(f"Cannot hold out a stratified test share of {self.root} ({err}); the smallest "
                            f"class, {classes[int(counts.argmin())]}, has {counts.min()} image(s). Add "
                            "images or give train/ and test/ folders.") from None
        train, test = np.sort(train), np.sort(test)
        return {"train": (x[train], y[train]), "test": (x[test], y[test])}
