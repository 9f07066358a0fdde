"""``dataset=arrays``: a NumPy .npz of train_x, train_y, test_x, test_y (and optionally
class_names).

Images are (N, C, H, W), (N, H, W, C) or (N, H, W) for one channel; uint8, or floats in [0, 1],
which are held as uint8 (rounded to the nearest of 256 levels) like every other dataset. Labels
are integers 0..K-1; K is the number of classes. ``layout`` says NCHW or NHWC where the shape
cannot (both the second and the last axis have 1 or 3 entries).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from latentexp.data.datasets import DataSource
from latentexp.data.memory import check_fits
from latentexp.data.raw import RawDataset, count_classes
from latentexp.errors import DataError

KEYS = ("train_x", "train_y", "test_x", "test_y")
LAYOUTS = ("NCHW", "NHWC")
HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype from the .npz's headers, without reading the arrays."""
    out = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = HEADER_READERS.get(version)
                    if read is None:  # a format numpy writes only for unusual dtypes: read the array
                        array = np.load(path, allow_pickle=False)[member[:-4]]
                        out[member[:-4]] = (array.shape, array.dtype)
                        continue
                    shape, _, dtype = read(f)
                out[member[:-4]] = (shape, dtype)
    except (OSError, zipfile.BadZipFile, ValueError) as err:
        raise DataError(f"{path} is not a NumPy .npz file ({err}); write it with numpy.savez.") from None
    return out


class Arrays(DataSource):
    def __init__(self, path: str | None = None, layout: str | None = None):
        if path is None:
            raise DataError("dataset=arrays reads a NumPy .npz: give it with dataset.path=FILE.npz.")
        if layout not in (None, *LAYOUTS):
            raise DataError(f"dataset.layout={layout} is not one of {', '.join(LAYOUTS)} (or null: from "
                            "the shape).")
        self.path, self.layout = Path(path).expanduser().resolve(), layout

    def files(self) -> dict[str, Path] | None:
        """The one file, under a fixed name: its content alone is the data (the same bytes under
        another file name are the same data, the same run)."""
        return {"arrays.npz": self.path} if self.path.is_file() else None

    def load(self) -> RawDataset:
        if not self.path.is_file():
            raise DataError(f"dataset.path={self.path} is not a file; give the .npz that holds "
                            f"{', '.join(KEYS)}.")
        headers = _headers(self.path)
        missing = [k for k in KEYS if k not in headers]
        if missing:
            raise DataError(f"{self.path} lacks {', '.join(missing)}; it holds "
                            f"{', '.join(headers) or 'nothing'}. Save the splits as numpy.savez(FILE, "
                            f"{', '.join(f'{k}=...' for k in KEYS)}).")
        pickled = [k for k, (_, dtype) in headers.items() if dtype.hasobject]
        if pickled:
            raise DataError(f"{self.path}: {', '.join(pickled)} hold(s) Python objects (dtype object), "
                            "which latentexp never unpickles; save numbers instead, e.g. numpy.savez(FILE, "
                            "train_y=numpy.asarray(labels, dtype=numpy.int64), ...), and class_names as "
                            "strings.")
        for split in ("train", "test"):
            (xs, _), (ys, _) = headers[f"{split}_x"], headers[f"{split}_y"]
            if len(xs) not in (3, 4) or len(ys) != 1 or xs[0] != ys[0]:
                raise DataError(f"{self.path}: {split}_x has shape {xs} and {split}_y {ys}; give N images "
                                f"(N, C, H, W), (N, H, W, C) or (N, H, W) and N labels.")
        check_fits(sum(int(np.prod(headers[f"{s}_x"][0])) for s in ("train", "test")), str(self.path))
        with np.load(self.path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in KEYS}
            names = [str(n) for n in f["class_names"]] if "class_names" in f else None
        images = {s: self._images(arrays[f"{s}_x"], s) for s in ("train", "test")}
        labels = {s: self._labels(arrays[f"{s}_y"], s) for s in ("train", "test")}
        k = count_classes(str(self.path), labels["train"], labels["test"])
        if names is not None and len(names) < k:
            raise DataError(f"{self.path}'s class_names has {len(names)} names for {k} classes.")
        return RawDataset(images["train"], labels["train"], images["test"], labels["test"], num_classes=k,
                          source=str(self.path), class_names=names[:k] if names is not None else None)

    def _images(self, x: np.ndarray, split: str) -> np.ndarray:
        if x.ndim == 3:
            x = x[:, None]
        layout = self.layout or self._layout_of(x.shape, split)
        if layout == "NHWC":
            x = x.transpose(0, 3, 1, 2)
        if x.shape[1] not in (1, 3):
            raise DataError(f"{self.path}: {split}_x has {x.shape[1]} channels in {layout} order; give 1 or "
                            "3 channels (or set dataset.layout).")
        if x.dtype == np.uint8:
            return np.ascontiguousarray(x)
        if np.issubdtype(x.dtype, np.floating):
            if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
                raise DataError(f"{self.path}: {split}_x holds floats outside [0, 1] (from {x.min()} to "
                                f"{x.max()}); scale them to [0, 1] or store uint8 0..255.")
            return np.ascontiguousarray(np.rint(x * 255)).astype(np.uint8)
        if np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 255:
            return np.ascontiguousarray(x).astype(np.uint8)
        raise DataError(f"{self.path}: {split}_x is {x.dtype}; give uint8 0..255 or floats in [0, 1].")

    def _layout_of(self, shape: tuple[int, ...], split: str) -> str:
        first, last = shape[1] in (1, 3), shape[3] in (1, 3)
        if first == last:
            raise DataError(f"{self.path}: {split}_x has shape {shape}, which could be NCHW or NHWC (or "
                            "neither); say which with dataset.layout=NCHW or dataset.layout=NHWC.")
        return "NCHW" if first else "NHWC"

    def _labels(self, y: np.ndarray, split: str) -> np.ndarray:
        whole = np.issubdtype(y.dtype, np.integer) or (
            np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)))
        if not whole:
                raise DataError(f"{self.path}: {split}_y is {y.dtype}; labels are integers 0..K-1.")
        return y.astype(np.int64)
