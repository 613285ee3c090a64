"""Canonical JSON and row hashes, so that a record hashes the same on every backend.

The audit log stores a hash of each record before and after a write. ``verify`` recomputes
those hashes from what the database returns later, possibly on another backend version,
so the form hashed must not depend on key order, on SQLite dropping time zones, or on
tuples versus lists. JSON going into the registry is normalised here first (and rejected,
naming the field, if it cannot be stored faithfully — NaN, for one, is not JSON).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import PurePath
from typing import Any

from sqlalchemy import inspect

from bastion.errors import RegistryError

__all__ = [
    "canonical_json",
    "row_hash",
    "row_id",
    "row_snapshot",
    "sha256_text",
    "to_jsonable",
    "utc",
]


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (SQLite returns naive ones, stored as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_jsonable(value: Any, where: str) -> Any:
    """A JSON-safe copy of ``value``; raises RegistryError naming ``where`` if impossible.

    Accepts mappings with string keys, sequences, str/int/float/bool/None, enums, paths,
    dates and anything with ``tolist()`` (numpy arrays and scalars). Non-finite floats
    are refused: PostgreSQL's JSON rejects them and silently changing them would lie.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        return to_jsonable(value.value, where)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RegistryError(f"{where} is {value!r}; only finite numbers can be stored")
        return float(value)
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise RegistryError(f"{where} has a non-string key {key!r}")
            out[key] = to_jsonable(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [to_jsonable(item, f"{where}[{i}]") for i, item in enumerate(items)]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return to_jsonable(tolist(), where)
    raise RegistryError(f"{where} holds a {type(value).__name__}, which cannot be stored as JSON")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTC timestamps: one text per value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_snapshot(row: object) -> dict[str, Any]:
    """Every mapped column of an ORM row, by column name."""
    mapper = inspect(type(row))
    return {attr.columns[0].name: getattr(row, attr.key) for attr in mapper.column_attrs}


def row_hash(row: object) -> str:
    """sha256 of the canonical JSON of ``row``'s columns and its table name."""
    table = getattr(row, "__tablename__", type(row).__name__)
    return sha256_text(canonical_json({"table": table, "row": row_snapshot(row)}))


def row_id(row: object) -> str:
    """The primary key of a flushed ORM row as text (the audit log's ``entity_id``)."""
    identity = inspect(row).identity
    if not identity:
        raise RegistryError(f"{type(row).__name__} has no primary key yet (not flushed)")
    return "/".join(str(part) for part in identity)
