"""The npz loader: modalities from array rank, scaling, labels, and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.config import DataConfig
from bastion.data import load_dataset
from bastion.errors import ConfigError, DataError


def _config(path: Path, **options: object) -> DataConfig:
    return DataConfig(name="npz", path=path, options=options)


def _images(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (n, 5, 5), dtype=np.uint8), np.arange(n) % 3


def test_uint8_images_get_a_channel_and_scale_255(tmp_path: Path) -> None:
    x, y = _images()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    dataset = load_dataset(_config(tmp_path / "d.npz"))
    assert dataset.modality == "image"
    assert dataset.input_shape == (1, 5, 5)
    assert dataset.input_scaling == {"scale": 255.0}
    assert dataset.classes == ("0", "1", "2")
    split = dataset.train
    np.testing.assert_allclose(split.x[:, 0] * 255, x[split.ids], atol=1e-4)
    np.testing.assert_array_equal(split.y, y[split.ids])


def test_two_dimensional_floats_are_tabular(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 7))
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(50) % 2)
    dataset = load_dataset(_config(tmp_path / "t.npz"))
    assert dataset.modality == "tabular"
    assert dataset.input_shape == (7,)
    assert dataset.train.x.dtype == np.float32


def test_string_inputs_are_text_and_string_labels_become_sorted_classes(tmp_path: Path) -> None:
    x = np.array([f"message {i}" for i in range(20)])
    y = np.array(["spam", "ham"] * 10)
    np.savez(tmp_path / "s.npz", x=x, y=y)
    dataset = load_dataset(_config(tmp_path / "s.npz"))
    assert dataset.modality == "text"
    assert dataset.classes == ("ham", "spam")
    split = dataset.test
    assert all(isinstance(s, str) for s in split.x)
    assert [dataset.classes[i] for i in split.y] == y[split.ids].tolist()
    with pytest.raises(DataError, match=r"text split has no tensor form"):
        split.tensors()


def test_classes_array_names_integer_labels(tmp_path: Path) -> None:
    x, y = _images()
    np.savez(tmp_path / "d.npz", x=x, y=y, classes=np.array(["cat", "dog", "eel"]))
    assert load_dataset(_config(tmp_path / "d.npz")).classes == ("cat", "dog", "eel")


def test_labels_beyond_the_classes_array(tmp_path: Path) -> None:
    x, y = _images()
    np.savez(tmp_path / "d.npz", x=x, y=y, classes=np.array(["cat", "dog"]))
    with pytest.raises(DataError, match=r"d\.npz: labels must lie in 0\.\.1"):
        load_dataset(_config(tmp_path / "d.npz"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"absent\.npz: file not found"):
        load_dataset(_config(tmp_path / "absent.npz"))


def test_missing_array(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"d\.npz: missing array 'y'"):
        load_dataset(_config(tmp_path / "d.npz"))


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(b"this is not numpy")
    with pytest.raises(DataError, match=r"d\.npz: "):
        load_dataset(_config(tmp_path / "d.npz"))


def test_truncated_archive(tmp_path: Path) -> None:
    x, y = _images(200)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"d\.npz: "):
        load_dataset(_config(tmp_path / "d.npz"))


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4))
    with pytest.raises(DataError, match=r"d\.npz: cannot read the arrays"):
        load_dataset(_config(tmp_path / "d.npz"))


def test_row_counts_must_agree(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 2)), y=np.zeros(4, dtype=int))
    with pytest.raises(DataError, match=r"d\.npz: x has 5 rows but y has 4"):
        load_dataset(_config(tmp_path / "d.npz"))


def test_nan_inputs(tmp_path: Path) -> None:
    x = np.ones((20, 3))
    x[7, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 2)
    with pytest.raises(DataError, match=r"d\.npz: inputs contain NaN .*first at row 7"):
        load_dataset(_config(tmp_path / "d.npz"))


def test_float_images_outside_the_unit_range_need_a_scale(tmp_path: Path) -> None:
    x, y = _images()
    np.savez(tmp_path / "d.npz", x=x.astype(np.float64), y=y)
    with pytest.raises(DataError, match=r"d\.npz: image values must lie in \[0, 1\]"):
        load_dataset(_config(tmp_path / "d.npz"))
    dataset = load_dataset(_config(tmp_path / "d.npz", scale=255.0))
    assert dataset.train.x.max() <= 1.0


def test_fractional_labels(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.array([0, 1, 0.5, 1]))
    with pytest.raises(DataError, match=r"d\.npz: labels must be whole numbers"):
        load_dataset(_config(tmp_path / "d.npz"))


def test_rank_five_inputs(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 1, 2, 2, 2)), y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"d\.npz: image x must be"):
        load_dataset(_config(tmp_path / "d.npz"))


def test_bad_option_value_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.options\.modality"):
        load_dataset(_config(tmp_path / "d.npz", modality="audio"))


def test_a_plain_npy_array_is_not_an_archive(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"d\.npy: holds a single \.npy array"):
        load_dataset(_config(tmp_path / "d.npy"))
