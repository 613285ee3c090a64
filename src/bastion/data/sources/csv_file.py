"""A user's own CSV file: one row per sample, one label column, every other column numeric.

Rows become tabular features ``(N, F)``, or images when the ``image_shape`` option is given
(``[1, 8, 8]``: the 64 feature columns in C order). Every cell is parsed here so that a bad one
is reported by line and column rather than as a silent NaN.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from pydantic import Field

from bastion.config import Channel, DataConfig, Section
from bastion.data.fingerprint import fingerprint_arrays
from bastion.data.raw import RawData
from bastion.data.registry import register_loader
from bastion.data.sources._common import encode_labels, parse_options, require_path
from bastion.errors import DataError

__all__ = ["load"]


class CsvOptions(Section):
    """How to read the file; see the field descriptions."""

    label: str | int = Field(
        default="label", description="label column: a header name, or an index (-1: last)"
    )
    header: bool = Field(default=True, description="the first line names the columns")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    image_shape: tuple[int, ...] | None = Field(
        default=None, description="reshape features to this (C, H, W) image shape"
    )
    scale: float = Field(default=1.0, gt=0, description="raw / scale -> model range")
    classes: tuple[str, ...] | None = Field(
        default=None, description="class names; integer labels index them"
    )


def _read_rows(path: Path, delimiter: str) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [row for row in csv.reader(handle, delimiter=delimiter) if row]
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc})") from exc


def _label_index(options: CsvOptions, names: list[str], path: Path) -> int:
    width = len(names)
    if isinstance(options.label, int):
        index = options.label + width if options.label < 0 else options.label
        if not 0 <= index < width:
            raise DataError(
                f"{path}: label column index {options.label} is out of range ({width} columns)"
            )
        return index
    if options.label not in names:
        raise DataError(
            f"{path}: label column {options.label!r} not found; columns are "
            f"{names[:10]}{' ...' if width > 10 else ''}"
        )
    return names.index(options.label)


def _parse_cell(cell: str, path: Path, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        raise DataError(f"{path}: line {line}, column {column!r}: empty cell")
    try:
        value = float(text)
    except ValueError as exc:
        raise DataError(
            f"{path}: line {line}, column {column!r}: {text!r} is not a number"
        ) from exc
    if not math.isfinite(value):
        raise DataError(f"{path}: line {line}, column {column!r}: {text!r} is not a finite number")
    return value


@register_loader("csv")
def load(config: DataConfig) -> RawData:
    """Features and labels from ``config.path`` as described by ``config.options``."""
    options = parse_options(CsvOptions, config)
    path = require_path(config, "a .csv file with a label column")
    rows = _read_rows(path, options.delimiter)
    if not rows:
        raise DataError(f"{path}: the file is empty")
    first_line = 1
    if options.header:
        names = [name.strip() for name in rows[0]]
        rows = rows[1:]
        first_line = 2
    else:
        names = [str(i) for i in range(len(rows[0]))]
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    label_at = _label_index(options, names, path)
    feature_at = [i for i in range(len(names)) if i != label_at]
    features = np.empty((len(rows), len(feature_at)), dtype=np.float64)
    labels: list[str] = []
    for r, row in enumerate(rows):
        line = first_line + r
        if len(row) != len(names):
            raise DataError(f"{path}: line {line} has {len(row)} cells; expected {len(names)}")
        labels.append(row[label_at].strip())
        for c, column in enumerate(feature_at):
            features[r, c] = _parse_cell(row[column], path, line, names[column])
    y, classes = encode_labels(_label_values(labels), options.classes, str(path))
    fingerprint = fingerprint_arrays(
        columns=np.asarray(names, dtype=object),
        features=features,
        labels=np.asarray(labels, dtype=object),
    )
    x = (features / options.scale).astype(np.float32)
    modality = Channel.TABULAR
    if options.image_shape is not None:
        size = math.prod(options.image_shape)
        if len(options.image_shape) != 3 or size != len(feature_at):
            raise DataError(
                f"{path}: image_shape {list(options.image_shape)} must be (C, H, W) with "
                f"C*H*W equal to the {len(feature_at)} feature columns"
            )
        x = x.reshape(len(rows), *options.image_shape)
        modality = Channel.IMAGE
    return RawData(
        x=x,
        y=y,
        classes=classes,
        modality=modality,
        fingerprint=fingerprint,
        source=str(path),
        input_scaling={"scale": options.scale},
        meta={"loader": "csv", "features": [names[i] for i in feature_at]},
    )


def _label_values(labels: list[str]) -> np.ndarray:
    """Integer labels when every label is a whole number, else the strings themselves."""
    try:
        return np.array([int(label) for label in labels], dtype=np.int64)
    except ValueError:
        return np.array(labels, dtype=object)
