"""Pieces several loaders share: option validation, label encoding, path checks.

Kept here so each loader module holds only how its own format is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import ValidationError

from bastion.config import DataConfig, Section, format_location
from bastion.errors import ConfigError, DataError

__all__ = ["encode_labels", "parse_options", "require_path"]

OptionsT = TypeVar("OptionsT", bound=Section)


def parse_options(model: type[OptionsT], config: DataConfig) -> OptionsT:
    """Validate ``config.options`` against a loader's option section (unknown keys are errors)."""
    try:
        return model.model_validate(config.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = format_location(("data", "options", *first["loc"]))
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields)) or "none"
            message = f"unknown option for the {config.name!r} loader (allowed: {allowed})"
        else:
            message = f"{first['msg']}; got {first.get('input')!r}"
        raise ConfigError(message, path=where) from exc


def require_path(config: DataConfig, what: str) -> Path:
    """``config.path``, or a :class:`ConfigError` saying what the loader needs there."""
    if config.path is None:
        raise ConfigError(f"the {config.name!r} loader needs a path: {what}", path="data.path")
    return Path(config.path)


def encode_labels(
    values: np.ndarray, classes: Sequence[str] | None, where: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map raw labels to int64 indices and class names.

    Integer labels (or integral floats) are indices; names are ``classes`` when given, else
    ``"0" .. str(max)``. String labels are looked up in ``classes`` when given, else the sorted
    distinct strings become the classes.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataError(f"{where}: labels must be one value per row; got shape {values.shape}")
    if values.dtype.kind in "USO":
        text = np.array([str(v) for v in values], dtype=object)
        names = (
            tuple(str(c) for c in classes)
            if classes is not None
            else tuple(sorted(set(text.tolist())))
        )
        lookup = {name: i for i, name in enumerate(names)}
        unknown = sorted({t for t in text.tolist() if t not in lookup})
        if unknown:
            raise DataError(
                f"{where}: labels {unknown[:5]} are not among the classes {list(names)}"
            )
        return np.array([lookup[t] for t in text.tolist()], dtype=np.int64), names
    if values.dtype.kind == "b":
        values = values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise DataError(f"{where}: labels contain NaN or infinite values")
        if not np.equal(np.floor(values), values).all():
            found = values[values != np.floor(values)][:3].tolist()
            raise DataError(f"{where}: labels must be whole numbers; found {found}")
    elif values.dtype.kind not in "iu":
        raise DataError(f"{where}: labels must be integers or strings; got dtype {values.dtype}")
    labels = values.astype(np.int64)
    if len(labels) and labels.min() < 0:
        raise DataError(f"{where}: labels must be non-negative; found {int(labels.min())}")
    if classes is not None:
        names = tuple(str(c) for c in classes)
    else:
        names = tuple(str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0))
    return labels, names
