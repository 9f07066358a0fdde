"""Datasets as tensors on the run's device."""

from latentexp.data.datasets import DataSource
from latentexp.data.raw import RawDataset
from latentexp.data.splits import train_val_indices
from latentexp.data.tensors import DeviceData, load_device_data, random_crop_flip

__all__ = [
    "DataSource",
    "DeviceData",
    "RawDataset",
    "load_device_data",
    "random_crop_flip",
    "train_val_indices",
]
