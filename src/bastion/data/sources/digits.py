"""scikit-learn's bundled 8x8 digits: the dataset every fast test and the demo run on.

It ships inside scikit-learn, so it needs no file and no network.
"""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.datasets import load_digits

from bastion.config import Channel, DataConfig, Section
from bastion.data.fingerprint import fingerprint_arrays
from bastion.data.raw import RawData
from bastion.data.registry import register_loader
from bastion.data.sources._common import parse_options

__all__ = ["load"]

_SCALE = 16.0  # pixel values are counts 0..16 of set bits in 4x4 blocks


class DigitsOptions(Section):
    """The digits loader takes no options."""


@register_loader("digits")
def load(config: DataConfig) -> RawData:
    """1797 images (1, 8, 8) scaled by 1/16 to [0, 1]; classes ``"0"`` .. ``"9"``."""
    parse_options(DigitsOptions, config)
    bunch = load_digits()
    pixels = np.asarray(bunch.images).astype(np.uint8)  # exact: the values are 0..16
    labels = np.asarray(bunch.target).astype(np.int64)
    x = (pixels.astype(np.float32) / _SCALE)[:, None, :, :]
    return RawData(
        x=x,
        y=labels,
        classes=tuple(str(c) for c in bunch.target_names),
        modality=Channel.IMAGE,
        fingerprint=fingerprint_arrays(pixels=pixels, labels=labels),
        source=f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",
        input_scaling={"scale": _SCALE},
        meta={"loader": "digits"},
    )
