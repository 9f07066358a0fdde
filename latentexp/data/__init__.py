"""Datasets as tensors on the run's device."""

from latentexp.data.sources import RawDataset, load_raw
from latentexp.data.splits import train_val_indices
from latentexp.data.tensors import DeviceData, load_device_data, random_crop_flip

__all__ = [
    "DeviceData",
    "RawDataset",
    "load_device_data",
    "load_raw",
    "random_crop_flip",
    "train_val_indices",
]
