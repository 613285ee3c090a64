"""The digits loader: shapes, scaling and ids against scikit-learn's own arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from bastion.config import DataConfig
from bastion.data import load_dataset
from bastion.errors import ConfigError


def test_digits_are_8x8_images_scaled_by_one_sixteenth(digits) -> None:
    source = load_digits()
    assert digits.name == "digits"
    assert digits.modality == "image"
    assert digits.input_shape == (1, 8, 8)
    assert digits.classes == tuple(str(d) for d in range(10))
    assert digits.input_scaling == {"scale": 16.0}
    assert sum(len(s) for s in digits.splits().values()) == len(source.target)
    for split in digits.splits().values():
        assert split.x.dtype == np.float32
        assert split.y.dtype == np.int64
        assert split.ids.dtype == np.int64
        assert split.x.shape[1:] == (1, 8, 8)
        np.testing.assert_allclose(split.x[:, 0] * 16.0, source.images[split.ids])


def test_tensors_share_the_split(digits) -> None:
    x, y = digits.val.tensors()
    assert x.dtype.is_floating_point
    assert x.shape == (len(digits.val), 1, 8, 8)
    assert y.tolist() == digits.val.y.tolist()


def test_digits_takes_no_options() -> None:
    with pytest.raises(ConfigError, match=r"data\.options\.size: unknown option"):
        load_dataset(DataConfig(name="digits", options={"size": 28}))
