"""Images decoded once: a source that decodes image files (an image folder, a torchvision dataset
class) keeps the result as uint8 arrays in the cache directory, keyed by its data's fingerprint
and its decoding settings, so that a second run reads one .npz instead of decoding again.

Also the one conversion of a decoded image (PIL) to the run's size and channel count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Callable

import numpy as np

from latentexp.data.fingerprint import cache_dir
from latentexp.data.raw import RawDataset
from latentexp.io import write_npz

log = logging.getLogger("latentexp")


def image_size_pair(image_size) -> tuple[int, int] | None:
    """``dataset.image_size``: null (keep), 32 (32 x 32) or [height, width]."""
    if image_size is None:
        return None
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# Part of every decoded cache key: bumped whenever decoding changes what an image becomes, so that
# images decoded before are decoded again (2: 16-bit images scaled, not clipped).
DECODER_VERSION = 2


def to_array(image, image_size: tuple[int, int] | None, channels: int) -> np.ndarray:
    """A PIL image as a uint8 (C, H, W) array: converted to 1 (grey) or 3 (RGB) channels, resized
    (bilinear, antialiased, as torchvision's Resize) where ``image_size`` is given. A 16-bit grey
    image is scaled to 8 bits (value / 257, rounded: 65535 is 255); PIL's own conversion would clip
    every value above 255 to white. 32-bit integer and floating-point images are refused: their
    range is not known."""
    image = _eight_bit(image)
    image = image.convert("L" if channels == 1 else "RGB")
    if image_size is not None and image.size != (image_size[1], image_size[0]):
        from PIL import Image

        image = image.resize((image_size[1], image_size[0]), Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _eight_bit(image):
    from PIL import Image

    from latentexp.errors import DataError

    sixteen = image.mode in SIXTEEN_BIT_MODES or (image.mode == "I" and image.format == "PNG")
    if sixteen:  # a 16-bit PNG opens as I;16, or as I in older Pillow
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
    if image.mode in ("I", "F"):
        kind = "32-bit integer" if image.mode == "I" else "floating-point"
        raise DataError(f"{getattr(image, 'filename', '') or 'an image'} holds {kind} pixels, whose range "
                        "latentexp cannot know; save the images as 8-bit or 16-bit (PNG, TIFF) first.")
    return image


def cached_decode(settings: dict, source: str, decode: Callable[[], RawDataset]) -> RawDataset:
    """``decode()``'s dataset, from the cache when these settings (which hold the data's
    fingerprint) were decoded before. A cache that cannot be read or written costs the decoding."""
    keyed = {**settings, "decoder": DECODER_VERSION}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_dir() / "decoded" / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            names = [str(n) for n in f["class_names"]] if "class_names" in f else None
            return RawDataset(f["train_x"], f["train_y"], f["test_x"], f["test_y"], int(f["num_classes"]),
                              source, names)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        pass  # not decoded yet, or a damaged cache file: decode again
    raw = decode()
    arrays = {"train_x": raw.train_x, "train_y": raw.train_y, "test_x": raw.test_x, "test_y": raw.test_y,
              "num_classes": np.int64(raw.num_classes)}
    if raw.class_names is not None:
        arrays["class_names"] = np.array(raw.class_names, dtype=str)
    try:
        write_npz(path, **arrays)
        log.info("decoded %s once; later runs read %s", source, path)
    except OSError as err:
        log.warning("could not keep the decoded images in %s (%s); they are decoded again next "
                    "time", path, err)
    return raw
