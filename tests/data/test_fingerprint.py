"""The content fingerprint changes exactly when the content does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.config import DataConfig
from bastion.data import fingerprint_arrays, load_dataset


def _save(path: Path, x: np.ndarray, y: np.ndarray, **extra: np.ndarray) -> DataConfig:
    np.savez(path, x=x, y=y, **extra)
    return DataConfig(name="npz", path=path)


def _arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 6, 6), dtype=np.uint8), np.arange(40) % 4


def test_same_content_saved_twice_has_the_same_fingerprint(tmp_path: Path) -> None:
    x, y = _arrays()
    first = load_dataset(_save(tmp_path / "a.npz", x, y))
    second = load_dataset(_save(tmp_path / "b.npz", x.copy(), y.copy()))
    assert first.fingerprint == second.fingerprint


def test_one_changed_pixel_changes_the_fingerprint(tmp_path: Path) -> None:
    x, y = _arrays()
    before = load_dataset(_save(tmp_path / "a.npz", x, y)).fingerprint
    x[17, 3, 2] ^= 1
    assert load_dataset(_save(tmp_path / "b.npz", x, y)).fingerprint != before


def test_one_changed_label_changes_the_fingerprint(tmp_path: Path) -> None:
    x, y = _arrays()
    before = load_dataset(_save(tmp_path / "a.npz", x, y)).fingerprint
    y[5] = (y[5] + 1) % 4
    assert load_dataset(_save(tmp_path / "b.npz", x, y)).fingerprint != before


def test_renamed_classes_change_the_fingerprint(tmp_path: Path) -> None:
    x, y = _arrays()
    a = load_dataset(_save(tmp_path / "a.npz", x, y, classes=np.array(["a", "b", "c", "d"])))
    b = load_dataset(_save(tmp_path / "b.npz", x, y, classes=np.array(["a", "b", "c", "e"])))
    assert a.fingerprint != b.fingerprint


def test_the_split_does_not_change_the_fingerprint() -> None:
    a = load_dataset(DataConfig(name="digits", seed=0))
    b = load_dataset(DataConfig(name="digits", seed=9, test_fraction=0.5, limit=300))
    assert a.fingerprint == b.fingerprint


def test_shape_and_dtype_are_part_of_the_content() -> None:
    values = np.arange(12, dtype=np.uint8)
    assert fingerprint_arrays(x=values.reshape(3, 4)) != fingerprint_arrays(x=values.reshape(4, 3))
    assert fingerprint_arrays(x=values) != fingerprint_arrays(x=values.astype(np.int16))


def test_byte_order_does_not_change_the_fingerprint() -> None:
    values = np.arange(6, dtype="<i4")
    assert fingerprint_arrays(x=values) == fingerprint_arrays(x=values.astype(">i4"))


def test_strings_are_length_prefixed() -> None:
    # Without length prefixes ["ab", "c"] and ["a", "bc"] would hash alike.
    first = np.array(["ab", "c"], dtype=object)
    second = np.array(["a", "bc"], dtype=object)
    assert fingerprint_arrays(x=first) != fingerprint_arrays(x=second)
