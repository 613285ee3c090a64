"""The stage cache: keys follow content, and only a committed entry counts as done."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import DataConfig
from bastion.errors import BastionError
from bastion.pipeline import StageCache, content_hash


def test_key_follows_content_not_spelling(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    a = cache.entry("train", {"data": DataConfig(name="digits"), "epochs": 3})
    b = cache.entry("train", {"epochs": 3, "data": DataConfig(name="digits", seed=0)})
    c = cache.entry("train", {"data": DataConfig(name="digits"), "epochs": 4})
    d = cache.entry("evaluate", {"data": DataConfig(name="digits"), "epochs": 3})
    assert a.key == b.key
    assert len({a.key, c.key, d.key}) == 3
    assert content_hash({"p": Path("x")}) == content_hash({"p": "x"})


def test_only_a_committed_entry_is_a_result(tmp_path: Path) -> None:
    entry = StageCache(tmp_path).entry("train", {"epochs": 3})
    entry.work.mkdir(parents=True)
    (entry.work / "half-written.pt").write_bytes(b"\0" * 10)  # what a killed stage leaves
    assert entry.result() is None
    entry.commit({"artifact": str(entry.work), "accuracy": 0.9})
    assert entry.result() == {"artifact": str(entry.work), "accuracy": 0.9}
    assert not list(entry.folder.glob(".result.*"))  # no temporary file left behind
    (entry.folder / "result.json").write_text("{not json")
    with pytest.raises(BastionError, match="unreadable"):
        entry.result()
    entry.reset()
    assert entry.result() is None
