"""A dataset as read from its source: uint8 NCHW images and int64 labels, train and test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentexp.errors import DataError


@dataclass
class RawDataset:
    train_x: np.ndarray  # uint8, (N, C, H, W)
    train_y: np.ndarray  # int64, (N,)
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    source: str  # where the data was read from
    class_names: list[str] | None = None  # label i is class_names[i], where the source names them

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
                raise DataError(
                    f"The {split} split in {self.source} has images of shape {x.shape} and labels of shape "
                    f"{y.shape}; expected (N, C, H, W) images and N labels. Fix the data or fetch it again."
                )
            if y.min() < 0 or y.max() >= self.num_classes:
                raise DataError(
                    f"The {split} labels in {self.source} fall outside 0..{self.num_classes - 1}. "
                    "Fix the data or fetch it again."
                )
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            (c, h, w), (tc, th, tw) = self.train_x.shape[1:], self.test_x.shape[1:]
            raise DataError(f"The training images in {self.source} are {c}x{h}x{w} (channels x height x "
                            f"width) and the test images {tc}x{th}x{tw}: a model trained on one shape "
                            "cannot be tested on the other. Give both splits one shape, or let latentexp "
                            "resize them (dataset.image_size=32 and dataset.channels=1 or 3, where the "
                            "dataset takes them).")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise DataError(f"{self.source} names {len(self.class_names)} classes but its labels count "
                            f"{self.num_classes}; give one name per class.")


def count_classes(source: str, *label_arrays: np.ndarray) -> int:
    """The class count of integer labels 0..K-1 (K = the largest label + 1); a class with no
    training sample is refused, since no model could learn it, and so is a single class, where
    every prediction is right and the accuracy says nothing."""
    labels = np.concatenate(label_arrays)
    if labels.size == 0 or labels.min() < 0:
        raise DataError(f"The labels in {source} must be integers 0, 1, 2, ...; found {labels.min()}.")
    k = int(labels.max()) + 1
    present = np.unique(label_arrays[0])  # sorted; never an array of K entries (K may be 2**40)
    if present.size < k:
        gaps = np.flatnonzero(present != np.arange(present.size))
        first = int(gaps[0]) if gaps.size else int(present.size)
        raise DataError(f"Class {first} of {source} has no training sample (labels run 0..{k - 1}); number "
                        f"the classes 0..K-1 with every class in the training split.")
    if k < 2:
        raise DataError(f"{source} holds a single class (every label is 0): a classifier needs at least 2, "
                        "and on one class every prediction is right, so its accuracy would say nothing. "
                        "Add the images of the other classes.")
    return k
