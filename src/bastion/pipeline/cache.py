"""The stage cache: each stage's outputs kept under a key that is the hash of its inputs.

A stage's key is the sha256 of the canonical JSON of everything its result depends on (its
config section, the content hashes of the upstream outputs, the code and attack-library
versions). Re-running a pipeline with unchanged inputs therefore finds every key already
complete and reuses the outputs; changing one input changes the keys of that stage and of
everything downstream, and nothing else.

An entry is complete only once its ``result.json`` exists; the file is written last and
atomically, so a process killed inside a stage leaves a work folder without a result. The
next run gets the same key, finds the same work folder, and the stage may resume from
whatever it left there (training checkpoints) or start over.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from bastion.errors import BastionError

__all__ = ["CacheEntry", "StageCache", "content_hash"]

_RESULT = "result.json"


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    raise TypeError(f"cannot hash a {type(value).__name__} as a stage input")


def content_hash(value: Any) -> str:
    """sha256 of ``value``'s canonical JSON (sorted keys, no whitespace)."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=_default)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One stage's folder for one input key."""

    stage: str
    key: str
    folder: Path

    @property
    def work(self) -> Path:
        """Where the stage writes its outputs (kept across an interrupted run)."""
        return self.folder / "work"

    def result(self) -> dict[str, Any] | None:
        """The committed result, or ``None`` when the stage never finished for this key."""
        path = self.folder / _RESULT
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BastionError(f"stage cache entry {path} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise BastionError(f"stage cache entry {path} is not a JSON object")
        return data

    def commit(self, result: Mapping[str, Any]) -> None:
        """Mark the entry complete with ``result`` (atomic: a reader sees all or nothing)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".result.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(result), handle, sort_keys=True, default=_default, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.folder / _RESULT)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def reset(self) -> None:
        """Forget a half-finished entry (work folder included)."""
        shutil.rmtree(self.folder, ignore_errors=True)


class StageCache:
    """Stage entries under ``root/<stage>/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, stage: str, inputs: Mapping[str, Any]) -> CacheEntry:
        key = content_hash({"stage": stage, "inputs": dict(inputs)})
        return CacheEntry(stage, key, self.root / stage / key[:32])
