"""The audit log: an append-only sha256 chain, and the check that nothing was changed.

Each entry's hash covers its own fields and the previous entry's hash, so editing,
inserting or deleting an entry in the middle breaks every later link. Deleting entries
from the *end* leaves a valid shorter chain, so a separate head row holds the chain's
length and last hash; every write locks and updates it in the same transaction as the
entry. ``verify`` also re-hashes every audited row and compares it with the ``after``
hash of that row's latest entry, which catches rows edited, inserted or deleted directly
in the database behind Bastion's back.

Limitation, stated plainly: the hashes are not keyed. Someone with write access to the
database who rewrites a record, recomputes every later link *and* updates the head can
produce a consistent forgery. ``verify`` returns the head hash; anchoring it outside the
database (a CI log, a signed release note) and passing it back as ``expected_head``
turns such a forgery into a detected one for everything up to that anchor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.registry.hashing import canonical_json, row_hash, row_id, sha256_text, utc
from bastion.registry.records import AuditEntry, AuditReport
from bastion.registry.tables import AUDITED, AuditHeadRow, AuditRow, Base

__all__ = ["GENESIS", "entry_hash", "make_entry", "to_entry", "verify_chain"]

GENESIS = "0" * 64


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before_hash: str | None,
    after_hash: str | None,
    prev_hash: str,
) -> str:
    """The hash of one entry: its fields and ``prev_hash``, in canonical JSON."""
    body: dict[str, Any] = {
        "seq": seq,
        "at": utc(at).isoformat(),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": before_hash,
        "after": after_hash,
        "prev": prev_hash,
    }
    return sha256_text(canonical_json(body))


def make_entry(
    head: AuditHeadRow,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before_hash: str | None,
    after_hash: str | None,
) -> AuditRow:
    """The next link after ``head``; advances ``head`` (caller holds its row lock)."""
    seq = head.count + 1
    digest = entry_hash(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before_hash=before_hash,
        after_hash=after_hash,
        prev_hash=head.last_hash,
    )
    row = AuditRow(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before_hash=before_hash,
        after_hash=after_hash,
        prev_hash=head.last_hash,
        entry_hash=digest,
    )
    head.count = seq
    head.last_hash = digest
    return row


def to_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=utc(row.at),
        actor=row.actor,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        before_hash=row.before_hash,
        after_hash=row.after_hash,
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )


def _check_links(rows: Sequence[AuditRow]) -> tuple[list[str], str]:
    problems: list[str] = []
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        if row.seq != expected_seq:
            problems.append(
                f"audit entry #{row.seq} found where #{expected_seq} belongs "
                "(an entry was deleted or inserted)"
            )
        if row.prev_hash != prev:
            problems.append(
                f"audit entry #{row.seq} does not link to the entry before it "
                "(an entry before it was edited, deleted or inserted)"
            )
        recomputed = entry_hash(
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            action=row.action,
            entity=row.entity,
            entity_id=row.entity_id,
            before_hash=row.before_hash,
            after_hash=row.after_hash,
            prev_hash=row.prev_hash,
        )
        if recomputed != row.entry_hash:
            problems.append(f"audit entry #{row.seq} was edited (its hash does not match)")
        prev = row.entry_hash
    return problems, prev


def _check_head(session: Session, rows: Sequence[AuditRow], last: str) -> list[str]:
    heads = session.scalars(select(AuditHeadRow)).all()
    if len(heads) != 1 or heads[0].id != 1:
        return [f"the audit head row is missing or duplicated ({len(heads)} rows)"]
    head = heads[0]
    problems: list[str] = []
    if head.count != len(rows):
        problems.append(
            f"the audit head records {head.count} entries but the log holds {len(rows)} "
            "(entries were deleted or inserted)"
        )
    if head.last_hash != last:
        problems.append("the audit head's last hash does not match the log's last entry")
    return problems


def _check_rows(session: Session, rows: Iterable[AuditRow]) -> list[str]:
    latest: dict[tuple[str, str], str | None] = {}
    for row in rows:
        latest[(row.entity, row.entity_id)] = row.after_hash
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    table: type[Base]
    for table in AUDITED:
        name = str(table.__tablename__)
        for record in session.scalars(select(table)).all():
            key = (name, row_id(record))
            seen.add(key)
            if key not in latest:
                problems.append(f"{name} row {key[1]} has no audit entry (written behind Bastion)")
            elif latest[key] != row_hash(record):
                problems.append(f"{name} row {key[1]} was changed outside Bastion")
    for key, after in latest.items():
        if after is not None and key not in seen:
            problems.append(f"{key[0]} row {key[1]} was deleted outside Bastion")
    return problems


def verify_chain(session: Session, *, expected_head: str | None = None) -> AuditReport:
    """Check links, head, and every audited row; return what is wrong, if anything."""
    rows = session.scalars(select(AuditRow).order_by(AuditRow.seq)).all()
    problems, last = _check_links(rows)
    problems += _check_head(session, rows, last)
    problems += _check_rows(session, rows)
    if expected_head is not None and expected_head not in {r.entry_hash for r in rows}:
        problems.append(
            f"the anchored head {expected_head[:12]}… is not in the log (history rewritten)"
        )
    return AuditReport(entries=len(rows), head=last, problems=tuple(problems))
