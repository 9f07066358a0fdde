"""Whole splits held as uint8 tensors on the run's device; batches are index slices.

No DataLoader workers: normalisation and augmentation are tensor ops on the device.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from latentexp.data.memory import check_fits
from latentexp.data.raw import RawDataset
from latentexp.data.samplers import m_per_class_batches, random_batches
from latentexp.data.splits import train_val_indices
from latentexp.errors import ConfigError


@dataclass
class DeviceData:
    train_x: torch.Tensor  # uint8 (N, C, H, W) on the device
    train_y: torch.Tensor  # int64 (N,)
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor  # (1, C, 1, 1)
    std: torch.Tensor
    num_classes: int
    source: str
    channels_last: bool = False
    augment: bool = False  # random crop and flip of training batches (dataset.augment)
    class_names: list[str] | None = None

    def describe(self) -> dict:
        """What result.json records of the data: image shape, classes and the normalisation used."""
        return {"source": self.source, "shape": [self.in_channels, *self.image_size],
                "num_classes": self.num_classes, "class_names": self.class_names,
                "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    @property
    def in_channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train_x.shape[2:])  # type: ignore[return-value]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() / 255.0 - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train_batches(
        self, batch_size: int, generator: torch.Generator, sampler: str = "random", m_per_class: int = 4,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of training batches in the order the sampler draws (see samplers.py)."""
        if sampler == "m_per_class":
            order = m_per_class_batches(self.train_y, batch_size, m_per_class, generator)
        else:
            order = random_batches(len(self.train_y), batch_size, generator, self.train_y.device)
        for idx in order:
            x = self.train_x[idx]
            if self.augment:  # on the raw uint8 images, padding with black as torchvision does
                x = random_crop_flip(x, generator)
            yield self.normalize(x), self.train_y[idx]

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        xs, ys = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
        for start in range(0, len(ys), batch_size):
            yield self.normalize(xs[start : start + batch_size]), ys[start : start + batch_size]


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop after zero padding and a random horizontal flip, per sample, on the device."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dev = x.device
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    batch_index = torch.arange(b, device=dev)[:, None, None, None]
    channel_index = torch.arange(c, device=dev)[None, :, None, None]
    out = padded[batch_index, channel_index, rows, cols]
    flip = torch.rand(b, generator=generator, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


TEST_SUBSET_SEED = 0  # one test subset for every run, so runs with different seeds stay comparable


def limited_test_indices(n: int, limit: int | None) -> np.ndarray:
    """All test indices, or a fixed seeded subset of ``limit`` of them in their original order."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(TEST_SUBSET_SEED).permutation(n)[:limit])


def training_statistics(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images, scaled to [0, 1] (float64 sums in
    chunks: exact enough, and no float copy of the whole split)."""
    total = np.zeros(images.shape[1])
    squares = np.zeros(images.shape[1])
    for start in range(0, len(images), 4096):
        chunk = images[start:start + 4096].astype(np.float64) / 255.0
        total += chunk.sum(axis=(0, 2, 3))
        squares += (chunk**2).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return mean.tolist(), np.where(std > 0, std, 1.0).tolist()


def load_device_data(raw: RawDataset, splits, seed: int, device: torch.device,
                     channels_last: bool = False) -> DeviceData:
    """A dataset's splits on the device. ``splits``: a mapping of the keys every dataset has
    (latentexp.data.datasets.SPLIT_KEYS: limit_train, limit_test, val_fraction, augment, mean, std)."""
    limit = splits.get("limit_train")
    train_idx, val_idx = train_val_indices(raw.train_y, seed, float(splits["val_fraction"]), limit)
    test_idx = limited_test_indices(len(raw.test_y), splits.get("limit_test"))
    per_image = int(np.prod(raw.train_x.shape[1:]))
    needed = (len(train_idx) + len(val_idx) + len(test_idx)) * per_image
    check_fits(needed, f"{raw.source} (its splits)", device)

    def put(a):
        return torch.from_numpy(a).to(device)

    c = raw.train_x.shape[1]
    # Not given: computed from the source's whole training split, the same for every run seed (the
    # validation share is part of it; the test split never is).
    mean_values, std_values = splits.get("mean"), splits.get("std")
    if mean_values is None or std_values is None:
        computed = training_statistics(raw.train_x)
        mean_values = computed[0] if mean_values is None else mean_values
        std_values = computed[1] if std_values is None else std_values
    mean = torch.tensor(list(mean_values), dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(list(std_values), dtype=torch.float32, device=device).view(1, -1, 1, 1)
    if mean.shape[1] not in (1, c) or std.shape[1] not in (1, c):
        raise ConfigError(
            f"dataset.mean/std have {mean.shape[1]}/{std.shape[1]} values but the images have {c} "
            "channels: give one value per channel (or null to compute them)."
        )
    return DeviceData(
        train_x=put(raw.train_x[train_idx]),
        train_y=put(raw.train_y[train_idx]),
        val_x=put(raw.train_x[val_idx]),
        val_y=put(raw.train_y[val_idx]),
        test_x=put(raw.test_x[test_idx]),
        test_y=put(raw.test_y[test_idx]),
        mean=mean,
        std=std,
        num_classes=raw.num_classes,
        source=raw.source,
        channels_last=channels_last,
        augment=bool(splits["augment"]),
        class_names=raw.class_names,
    )
