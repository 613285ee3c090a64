"""MNIST from the original IDX ``.gz`` files in a folder, with the official split kept.

The folder must hold ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``. If it
also holds the ``train-*`` pair, rows are the 60k training images followed by the 10k test
images and the test split is exactly the official test set. Otherwise (the 10k test set alone,
as in ``shared/data/mnist``) the stratified split draws its test rows from those 10k: with
the default fractions 2000 test and 8000 others, 1000 of which are validation
(see :mod:`bastion.data.splits`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.config import Channel, DataConfig, Section
from bastion.data.fingerprint import fingerprint_arrays
from bastion.data.idx import read_idx_gz
from bastion.data.raw import RawData
from bastion.data.registry import register_loader
from bastion.data.sources._common import parse_options, require_path
from bastion.errors import DataError

__all__ = ["load", "read_pair"]

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)
_FILES = {
    part: (f"{part}-images-idx3-ubyte.gz", f"{part}-labels-idx1-ubyte.gz")
    for part in ("train", "t10k")
}
_SCALE = 255.0


class MnistOptions(Section):
    """``use_train``: read the ``train-*`` pair when present (default true)."""

    use_train: bool = True


def read_pair(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images ``(N, 28, 28)`` and labels ``(N,)`` of ``part`` (``train``/``t10k``)."""
    images_path, labels_path = (folder / name for name in _FILES[part])
    images = read_idx_gz(images_path, magic=IMAGES_MAGIC)
    labels = read_idx_gz(labels_path, magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{labels_path}: labels must be digits 0..9; found {int(labels.max())}")
    return images, labels


@register_loader("mnist")
def load(config: DataConfig) -> RawData:
    """28x28 digits scaled by 1/255 to [0, 1] as ``(1, 28, 28)``; classes ``"0"`` .. ``"9"``."""
    options = parse_options(MnistOptions, config)
    folder = require_path(
        config,
        "a folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (train-* optional)",
    )
    if not folder.is_dir():
        raise DataError(f"{folder}: MNIST folder not found (or not a folder)")
    parts = ["t10k"]
    train_present = [(folder / name).exists() for name in _FILES["train"]]
    if options.use_train and any(train_present):
        if not all(train_present):
            missing = [n for n, ok in zip(_FILES["train"], train_present, strict=True) if not ok]
            raise DataError(f"{folder / missing[0]}: file not found (its train-* partner exists)")
        parts = ["train", "t10k"]
    arrays = {part: read_pair(folder, part) for part in parts}
    if len(parts) == 2 and arrays["train"][0].shape[1:] != arrays["t10k"][0].shape[1:]:
        raise DataError(
            f"{folder}: train images are {arrays['train'][0].shape[1:]} but test images are "
            f"{arrays['t10k'][0].shape[1:]}"
        )
    pixels = np.concatenate([arrays[p][0] for p in parts])
    labels = np.concatenate([arrays[p][1] for p in parts]).astype(np.int64)
    test_mask = None
    if len(parts) == 2:
        test_mask = np.zeros(len(labels), dtype=np.bool_)
        test_mask[len(arrays["train"][1]) :] = True
    fingerprint = fingerprint_arrays(
        **{f"{p}_images": arrays[p][0] for p in parts},
        **{f"{p}_labels": arrays[p][1] for p in parts},
    )
    return RawData(
        x=(pixels.astype(np.float32) / _SCALE)[:, None, :, :],
        y=labels,
        classes=tuple(str(d) for d in range(10)),
        modality=Channel.IMAGE,
        fingerprint=fingerprint,
        source=str(folder),
        input_scaling={"scale": _SCALE},
        meta={"loader": "mnist", "files": [n for p in parts for n in _FILES[p]]},
        test_mask=test_mask,
    )
