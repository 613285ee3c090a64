"""The MNIST loader: the real 10k test files, and every way an IDX .gz file can be broken."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from bastion.config import DataConfig
from bastion.data import load_dataset
from bastion.data.idx import read_idx_gz
from bastion.errors import ConfigError, DataError

from .helpers import idx_bytes, tiny_mnist, write_gz, write_mnist_pair

# Per-class counts of the MNIST test set as published with the files (shared/data/README.md).
PUBLISHED_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _mnist(path: Path, **kwargs: object) -> DataConfig:
    return DataConfig(name="mnist", path=path, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def real_mnist(shared_data: Path):
    return load_dataset(_mnist(shared_data / "mnist"))


def test_real_test_set_has_the_published_rows_and_class_counts(real_mnist) -> None:
    labels = np.concatenate([s.y for s in real_mnist.splits().values()])
    assert len(labels) == sum(PUBLISHED_TEST_COUNTS)
    assert np.bincount(labels, minlength=10).tolist() == PUBLISHED_TEST_COUNTS
    assert real_mnist.input_shape == (1, 28, 28)
    assert real_mnist.input_scaling == {"scale": 255.0}
    assert real_mnist.modality == "image"


def test_real_test_set_splits_8000_2000_with_val_from_the_8000(real_mnist) -> None:
    assert len(real_mnist.test) == 2000
    assert len(real_mnist.train) + len(real_mnist.val) == 8000
    assert len(real_mnist.val) == 1000
    assert real_mnist.meta["split"]["method"] == "stratified-interleave"


def test_real_pixels_are_the_file_bytes_over_255(real_mnist, shared_data: Path) -> None:
    with gzip.open(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz") as handle:
        raw = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    split = real_mnist.test
    np.testing.assert_array_equal(np.rint(split.x[:, 0] * 255).astype(np.uint8), raw[split.ids])
    assert split.x.dtype == np.float32
    assert split.x.min() >= 0.0
    assert split.x.max() <= 1.0


def test_fingerprint_is_stable_and_independent_of_the_split(real_mnist, shared_data) -> None:
    other_split = load_dataset(_mnist(shared_data / "mnist", seed=5, limit=500))
    assert other_split.fingerprint == real_mnist.fingerprint
    assert len(real_mnist.fingerprint) == 64


def test_train_files_present_make_the_official_test_set_the_test_split(tmp_path: Path) -> None:
    train_images, train_labels = tiny_mnist(60, seed=1)
    test_images, test_labels = tiny_mnist(20, seed=2)
    write_mnist_pair(tmp_path, "train", train_images, train_labels)
    write_mnist_pair(tmp_path, "t10k", test_images, test_labels)
    dataset = load_dataset(_mnist(tmp_path, val_fraction=0.1))
    assert sorted(dataset.test.ids.tolist()) == list(range(60, 80))
    assert len(dataset.val) == 6
    np.testing.assert_array_equal(
        np.rint(dataset.test.x[:, 0] * 255).astype(np.uint8), test_images[dataset.test.ids - 60]
    )
    assert dataset.meta["split"]["method"] == "predefined-test"
    # The training files are part of the content, so the fingerprint sees them.
    only_test = tmp_path / "only-test"
    write_mnist_pair(only_test, "t10k", test_images, test_labels)
    assert load_dataset(_mnist(only_test)).fingerprint != dataset.fingerprint
    ignoring = load_dataset(_mnist(tmp_path, options={"use_train": False}))
    assert len(ignoring.meta["files"]) == 2


def test_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere.*not found"):
        load_dataset(_mnist(tmp_path / "nowhere"))


def test_missing_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"data\.path"):
        load_dataset(DataConfig(name="mnist"))


def test_missing_labels_file_names_it(tmp_path: Path) -> None:
    images, labels = tiny_mnist(10)
    _, labels_path = write_mnist_pair(tmp_path, "t10k", images, labels)
    labels_path.unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: file not found"):
        load_dataset(_mnist(tmp_path))


def test_half_of_the_train_pair_is_an_error(tmp_path: Path) -> None:
    images, labels = tiny_mnist(10)
    write_mnist_pair(tmp_path, "t10k", images, labels)
    _, train_labels = write_mnist_pair(tmp_path, "train", images, labels)
    train_labels.unlink()
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: file not found"):
        load_dataset(_mnist(tmp_path))


def test_swapped_files_have_the_wrong_magic_number(tmp_path: Path) -> None:
    images, labels = tiny_mnist(10)
    images_path, labels_path = write_mnist_pair(tmp_path, "t10k", images, labels)
    data = images_path.read_bytes()
    images_path.write_bytes(labels_path.read_bytes())
    labels_path.write_bytes(data)
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte.gz: wrong magic number 0x00000801"
    ):
        load_dataset(_mnist(tmp_path))


def test_truncated_gzip_of_the_real_file_is_reported(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "mnist"
    shutil.copy(source / "t10k-labels-idx1-ubyte.gz", tmp_path)
    whole = (source / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: truncated gzip"):
        load_dataset(_mnist(tmp_path))


def test_not_a_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(idx_bytes(tiny_mnist(3)[0]))  # IDX, but not compressed
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: not a gzip file"):
        read_idx_gz(path, magic=0x00000803)


def test_corrupt_compressed_data(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "x.gz", idx_bytes(tiny_mnist(30)[0]))
    data = bytearray(path.read_bytes())
    for i in range(20, 60):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"x\.gz: (corrupt gzip data|truncated gzip)"):
        read_idx_gz(path, magic=0x00000803)


def test_payload_shorter_than_the_dimensions(tmp_path: Path) -> None:
    data = idx_bytes(tiny_mnist(5)[0])
    path = write_gz(tmp_path / "short.gz", data[:-100])
    with pytest.raises(
        DataError, match=r"short\.gz: truncated: dimensions \(5, 28, 28\) need 3920"
    ):
        read_idx_gz(path, magic=0x00000803)


def test_payload_longer_than_the_dimensions(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "long.gz", idx_bytes(tiny_mnist(5)[0]) + b"\0\0")
    with pytest.raises(DataError, match=r"long\.gz: has trailing bytes"):
        read_idx_gz(path, magic=0x00000803)


def test_header_cut_short(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "head.gz", idx_bytes(tiny_mnist(5)[0])[:9])
    with pytest.raises(DataError, match=r"head\.gz: truncated IDX header"):
        read_idx_gz(path, magic=0x00000803)


def test_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    images, labels = tiny_mnist(10)
    write_mnist_pair(tmp_path, "t10k", images, labels[:9])
    with pytest.raises(DataError, match=r"holds 10 images but .* holds 9 labels"):
        load_dataset(_mnist(tmp_path))


def test_labels_above_nine_are_rejected(tmp_path: Path) -> None:
    images, labels = tiny_mnist(10)
    labels[3] = 12
    write_mnist_pair(tmp_path, "t10k", images, labels)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: labels must be digits 0..9"):
        load_dataset(_mnist(tmp_path))


def test_train_and_test_image_sizes_must_agree(tmp_path: Path) -> None:
    images, labels = tiny_mnist(20)
    write_mnist_pair(tmp_path, "t10k", images, labels)
    write_mnist_pair(tmp_path, "train", images[:, :27, :27].copy(), labels)
    with pytest.raises(DataError, match=r"train images are \(27, 27\)"):
        load_dataset(_mnist(tmp_path))


def test_unknown_option_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.options\.flatten: unknown option"):
        load_dataset(_mnist(tmp_path, options={"flatten": True}))
