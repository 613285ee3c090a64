"""The SMS Spam Collection loader: the real file, the shared split, and damaged copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.config import DataConfig
from bastion.data import load_dataset
from bastion.data.sms_spam import read_messages
from bastion.errors import ConfigError, DataError


def test_reads_the_real_collection(shared_data: Path) -> None:
    texts, labels = read_messages(shared_data / "sms_spam" / "SMSSpamCollection")
    assert len(texts) == 5574
    assert int(labels.sum()) == 747  # spam, as the dataset's readme states
    assert texts[2].startswith("Free entry in 2 a wkly comp")
    assert labels[2] == 1


def test_stratified_deterministic_split(shared_data: Path) -> None:
    config = DataConfig(name="sms_spam", path=shared_data / "sms_spam", seed=3)
    first, again = load_dataset(config), load_dataset(config)
    assert first.modality == "text"
    assert first.classes == ("ham", "spam")
    assert first.fingerprint == again.fingerprint
    np.testing.assert_array_equal(first.test.ids, again.test.ids)
    assert len(first.train) + len(first.val) + len(first.test) == 5574
    spam_share = 747 / 5574
    for split in (first.train, first.val, first.test):
        assert abs(split.y.mean() - spam_share) < 0.01
        assert all(isinstance(t, str) for t in split.x[:50])
    other = load_dataset(config.model_copy(update={"seed": 4}))
    assert not np.array_equal(first.test.ids, other.test.ids)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ham\thello\nspam no tab here\n", "line 2 has no tab"),
        (b"ham\thello\neggs\tspam?\n", "line 2 has label 'eggs'"),
        (b"ham\thello\nspam\t \n", "line 2 has an empty message"),
        (b"ham\th\xe9llo\n", "not UTF-8"),
        (b"\n\n", "holds no messages"),
    ],
)
def test_damaged_files_name_the_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "SMSSpamCollection"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_messages(tmp_path)


def test_missing_file_and_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_dataset(DataConfig(name="sms_spam", path=tmp_path))
    with pytest.raises(ConfigError, match="needs a path"):
        load_dataset(DataConfig(name="sms_spam"))
    with pytest.raises(ConfigError, match="unknown option"):
        load_dataset(DataConfig(name="sms_spam", path=tmp_path, options={"lang": "en"}))
