"""The human review queue: requests the guarded server flagged, waiting for a label.

Labelled items become training data for the next adversarial-training round, so an export
writes exactly what a reviewer decided (who and when included) as JSON lines.
"""

from __future__ import annotations

import builtins
import json
import os
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.errors import NotFoundError, RegistryError
from bastion.registry.db import Database, Tx
from bastion.registry.hashing import to_jsonable, utc
from bastion.registry.records import NewReviewItem, ReviewItem, ReviewStatus, as_enum
from bastion.registry.tables import ReviewItemRow

__all__ = ["ReviewQueue"]


def _item(row: ReviewItemRow) -> ReviewItem:
    return ReviewItem(
        id=row.id,
        request_id=row.request_id,
        model=row.model,
        inputs=row.inputs,
        outputs=row.outputs,
        scores=dict(row.scores),
        reasons=tuple(str(r) for r in row.reasons),
        status=ReviewStatus(row.status),
        label=row.label,
        labelled_by=row.labelled_by,
        labelled_at=utc(row.labelled_at) if row.labelled_at is not None else None,
        created_at=utc(row.created_at),
    )


def _find(session: Session, request_id: str) -> ReviewItemRow:
    row = session.scalars(
        select(ReviewItemRow).where(ReviewItemRow.request_id == request_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no review item for request {request_id!r}")
    return row


def _payload(item: NewReviewItem) -> dict[str, Any]:
    """The row's values, checked and made JSON-safe before any transaction starts."""
    request_id = item.request_id
    if not isinstance(request_id, str) or not request_id or len(request_id) > 200:
        raise RegistryError(f"request id must be 1–200 characters, got {request_id!r}")
    if item.model is not None and (not isinstance(item.model, str) or len(item.model) > 220):
        raise RegistryError(f"review model must be at most 220 characters, got {item.model!r}")
    return {
        "request_id": request_id,
        "model": item.model,
        "inputs": to_jsonable(item.inputs, "review inputs"),
        "outputs": to_jsonable(item.outputs, "review outputs"),
        "scores": to_jsonable(dict(item.scores), "review scores"),
        "reasons": [str(r) for r in item.reasons],
    }


class ReviewQueue:
    """``registry.review``: add flagged requests, list, label and export them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        request_id: str,
        *,
        inputs: Any,
        outputs: Any,
        scores: Mapping[str, Any] | None = None,
        reasons: Sequence[str] = (),
        model: str | None = None,
    ) -> ReviewItem:
        """Queue one request for review; a request id can be queued only once."""
        item = NewReviewItem(
            request_id=request_id,
            inputs=inputs,
            outputs=outputs,
            scores=scores or {},
            reasons=reasons,
            model=model,
        )
        return self.add_many([item])[0]

    def add_many(self, items: Sequence[NewReviewItem]) -> builtins.list[ReviewItem]:
        """Queue several requests in one transaction: all of them, or none.

        Each row gets its own ``review.add`` audit entry, exactly as :meth:`add` writes it;
        one commit for many rows is what lets a busy server queue flagged requests cheaply.
        Any invalid item, or a request id already queued (or given twice), fails them all.
        """
        payloads = [_payload(item) for item in items]
        ids = [payload["request_id"] for payload in payloads]
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        if repeated:
            raise RegistryError(f"request ids given more than once: {repeated}")
        if not payloads:
            return []

        def work(tx: Tx) -> builtins.list[ReviewItem]:
            queued = tx.session.scalars(
                select(ReviewItemRow.request_id).where(ReviewItemRow.request_id.in_(ids))
            ).all()
            if queued:
                raise RegistryError(f"request {sorted(queued)[0]!r} is already in the review queue")
            out: builtins.list[ReviewItem] = []
            for payload in payloads:
                row = ReviewItemRow(
                    status=ReviewStatus.PENDING.value,
                    label=None,
                    labelled_by=None,
                    labelled_at=None,
                    created_at=tx.now,
                    **payload,
                )
                tx.insert(row, "review.add")
                out.append(_item(row))
            return out

        return self._db.write(work)

    def get(self, request_id: str) -> ReviewItem:
        return self._db.read(lambda s: _item(_find(s, request_id)))

    def list(
        self, *, status: ReviewStatus | str | None = None, limit: int | None = None
    ) -> builtins.list[ReviewItem]:
        """Items oldest first, optionally only one status, at most ``limit`` of them."""
        wanted = as_enum(ReviewStatus, status, "review status") if status is not None else None

        def work(session: Session) -> builtins.list[ReviewItem]:
            query = select(ReviewItemRow).order_by(ReviewItemRow.id)
            if wanted is not None:
                query = query.where(ReviewItemRow.status == wanted.value)
            if limit is not None:
                query = query.limit(limit)
            return [_item(r) for r in session.scalars(query).all()]

        return self._db.read(work)

    def label(self, request_id: str, label: str, *, labelled_by: str | None = None) -> ReviewItem:
        """Record a reviewer's label (relabelling is allowed and audited)."""
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise RegistryError(f"a review label must be 1–200 characters, got {label!r}")

        def work(tx: Tx) -> ReviewItem:
            row = _find(tx.session, request_id)
            tx.update(
                row,
                "review.label",
                status=ReviewStatus.LABELLED.value,
                label=label.strip(),
                labelled_by=labelled_by or tx.actor,
                labelled_at=tx.now,
            )
            return _item(row)

        return self._db.write(work)

    def export(
        self,
        path: str | Path | None = None,
        *,
        status: ReviewStatus | str | None = ReviewStatus.LABELLED,
    ) -> builtins.list[dict[str, Any]]:
        """Items (labelled ones by default) as dicts; also written as JSON lines to ``path``."""
        items = [item.to_dict() for item in self.list(status=status)]
        if path is not None:
            target = Path(path)
            temp: str | None = None
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, temp = tempfile.mkstemp(prefix=".review-", dir=target.parent)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    for item in items:
                        handle.write(json.dumps(item, sort_keys=True) + "\n")
                os.replace(temp, target)
                temp = None
            except OSError as exc:
                raise RegistryError(f"cannot write review export {target}: {exc}") from exc
            finally:
                if temp is not None:
                    Path(temp).unlink(missing_ok=True)
        return items
