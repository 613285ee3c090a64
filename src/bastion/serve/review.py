"""Handing flagged and abstained inputs to people: the server side of the review queue.

The server writes every input it flagged or abstained on *before* it answers, through a
:class:`ReviewSink` (the registry's review queue in production), so an acknowledged request
is never a lost review item. A request with one input gives one item keyed by its request
id; a batch gives one item per queued input, keyed ``<request id>/<index>``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import numpy as np
from numpy.typing import NDArray

from bastion.errors import DataError

__all__ = ["GroupCommit", "ReviewEntry", "ReviewSink", "export_dataset"]


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


class GroupCommit:
    """Concurrent requests' entries written together, each request answered once durable.

    A request awaits :meth:`add`; the first waiter starts a drain task that hands *all*
    entries queued by then to the sink in one call (one transaction, one commit) in a
    worker thread, then wakes every request whose entries it wrote. Under load this turns N
    commits into a few, which matters because each commit waits for the disk; no request
    is answered before its entries are stored. If a group fails, its entries are retried
    one request at a time so one bad entry cannot fail its neighbours.
    """

    def __init__(self, sink: ReviewSink, *, max_group: int = 512) -> None:
        self.sink = sink
        self.max_group = max_group
        self._pending: list[tuple[Sequence[ReviewEntry], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, entries: Sequence[ReviewEntry]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((entries, done))
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._pending:
            group = self._pending[: self.max_group]
            del self._pending[: len(group)]
            entries = [entry for request, _ in group for entry in request]
            try:
                await anyio.to_thread.run_sync(self.sink.add, entries)
            except Exception:
                await self._one_by_one(group)
                continue
            for _, done in group:
                if not done.done():
                    done.set_result(None)

    async def _one_by_one(
        self, group: list[tuple[Sequence[ReviewEntry], asyncio.Future[None]]]
    ) -> None:
        for request, done in group:
            try:
                await anyio.to_thread.run_sync(self.sink.add, request)
            except Exception as exc:  # handed to the waiting request, which reports it
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(None)


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
