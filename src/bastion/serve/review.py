"""Handing flagged and abstained inputs to people: the server side of the review queue.

The server writes every input it flagged or abstained on *before* it answers, through a
:class:`ReviewSink` (the registry's review queue in production), so an acknowledged request
is never a lost review item. A request with one input gives one item keyed by its request
id; a batch gives one item per queued input, keyed ``<request id>/<index>``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bastion.errors import DataError

__all__ = ["ReviewEntry", "ReviewSink", "export_dataset"]


@dataclass(frozen=True)
class ReviewEntry:
    """One queued input with what the server answered and why it was queued."""

    request_id: str
    model: str
    inputs: Any
    outputs: dict[str, Any]
    scores: dict[str, float]
    reasons: list[str]


class ReviewSink(Protocol):
    """Stores entries durably; raises a :class:`~bastion.errors.RegistryError` if it cannot."""

    def add(self, entries: Sequence[ReviewEntry]) -> None: ...


def export_dataset(items: Sequence[Any], path: str | os.PathLike[str]) -> int:
    """Write labelled review items as an ``.npz`` the ``npz`` data loader reads.

    ``items`` are registry review items (``.request_id``, ``.inputs``, ``.outputs``,
    ``.label``). Arrays: ``x`` float32 in the model's [0, 1] space, shape (N, *input shape);
    ``y`` int64 class indices; ``classes`` the model's class names; ``request_ids`` to trace
    each row back to its queue item. Returns the number of rows written.
    """
    rows: list[NDArray[np.float32]] = []
    labels: list[int] = []
    ids: list[str] = []
    classes: list[str] | None = None
    for item in items:
        if item.label is None:
            continue
        where = f"review item {item.request_id!r}"
        try:
            raw = np.asarray(item.inputs["raw"], dtype=np.float32)
            scale = float(item.inputs["scale"])
            item_classes = [str(c) for c in item.outputs["classes"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: not written by the Bastion server ({exc})") from exc
        if classes is None:
            classes = item_classes
        elif item_classes != classes:
            raise DataError(f"{where}: its model has other classes than the first item's")
        if item.label not in classes:
            raise DataError(f"{where}: label {item.label!r} is not one of the classes {classes}")
        if rows and raw.shape != rows[0].shape:
            raise DataError(f"{where}: input shape {raw.shape} differs from {rows[0].shape}")
        rows.append(raw / np.float32(scale))
        labels.append(classes.index(item.label))
        ids.append(item.request_id)
    if not rows or classes is None:
        raise DataError("no labelled review items to export")
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            np.savez(
                handle,
                x=np.stack(rows).astype(np.float32),
                y=np.asarray(labels, dtype=np.int64),
                classes=np.asarray(classes, dtype=str),
                request_ids=np.asarray(ids, dtype=str),
            )
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc}") from exc
    return len(rows)
