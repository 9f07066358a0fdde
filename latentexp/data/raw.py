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
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise DataError(f"{self.source} names {len(self.class_names)} classes but its labels count "
                            f"{self.num_classes}; give one name per class.")


def count_classes(source: str, *label_arrays: np.ndarray) -> int:
    """The class count of integer labels 0..K-1 (K = the largest label + 1); a class with no
    training sample is refused, since no model could learn it."""
    labels = np.concatenate(label_arrays)
    if labels.size == 0 or labels.min() < 0:
        raise DataError(f"The labels in {source} must be integers 0, 1, 2, ...; found {labels.min()}.")
    k = int(labels.max()) + 1
    missing = np.setdiff1d(np.arange(k), label_arrays[0])
    if missing.size:
        raise DataError(f"Class {int(missing[0])} of {source} has no training sample (labels run "
                        f"0..{k - 1}); number the classes 0..K-1 with every class in the training split.")
    return k
