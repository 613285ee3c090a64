"""The audit chain detects edits, insertions and deletions made directly in the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from bastion.registry import Registry
from bastion.registry.audit import GENESIS, entry_hash
from bastion.registry.hashing import row_hash
from bastion.registry.tables import RiskRow


@pytest.fixture
def filled(registry: Registry) -> Registry:
    """A registry with a few audited writes of different kinds."""
    registry.owners.set("digits", "incident_response", "carol")
    for i in range(3):
        registry.risks.add(f"risk {i}", likelihood=2, impact=3, owner="bob")
    registry.risks.update(2, status="mitigating")
    assert registry.audit.verify().ok
    return registry


@pytest.fixture
def raw(db_url: str) -> Iterator[Engine]:
    """A plain engine on the same database: the tamperer's tool."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def _when(value: object) -> datetime:
    """A timestamp as read by raw SQL (SQLite gives text, PostgreSQL a datetime)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _problems(registry: Registry) -> str:
    report = registry.audit.verify()
    assert not report.ok, "tampering went unnoticed"
    return "\n".join(report.problems)


def test_untouched_log_verifies_and_records_who_did_what(filled: Registry) -> None:
    report = filled.audit.verify()
    assert report.ok
    assert report.entries == 5
    log = filled.audit.log()
    assert [e.action for e in log] == [
        "owner.set",
        "risk.add",
        "risk.add",
        "risk.add",
        "risk.update",
    ]
    assert all(e.actor == "tester" for e in log)
    assert log[0].prev_hash == GENESIS
    assert log[-1].entry_hash == report.head
    update = log[-1]
    assert update.entity == "risks"
    assert update.entity_id == "2"
    assert update.before_hash is not None
    assert update.before_hash != update.after_hash
    assert [e.seq for e in filled.audit.log(limit=2)] == [4, 5]
    assert [e.action for e in filled.audit.log(entity="risks", entity_id=2)] == [
        "risk.add",
        "risk.update",
    ]


def test_edited_entry_is_detected(filled: Registry, raw: Engine) -> None:
    with raw.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    assert "audit entry #2 was edited" in _problems(filled)


def test_inserted_entry_is_detected(filled: Registry, raw: Engine) -> None:
    # A forged entry with a correct hash of its own, slotted in as #3: later links break.
    with raw.begin() as conn:
        conn.execute(text("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3"))
        conn.execute(text("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103"))
        prev = conn.execute(text("SELECT entry_hash FROM audit_log WHERE seq = 2")).scalar_one()
        at = _when(conn.execute(text("SELECT at FROM audit_log WHERE seq = 2")).scalar_one())
        forged = dict(
            seq=3,
            at=at,
            actor="mallory",
            action="risk.add",
            entity="risks",
            entity_id="99",
            before_hash=None,
            after_hash="f" * 64,
            prev_hash=prev,
        )
        conn.execute(
            text(
                "INSERT INTO audit_log (seq, at, actor, action, entity, entity_id, before_hash,"
                " after_hash, prev_hash, entry_hash) VALUES (:seq, :at, :actor, :action,"
                " :entity, :entity_id, :before_hash, :after_hash, :prev_hash, :entry_hash)"
            ),
            {**forged, "entry_hash": entry_hash(**forged)},
        )
    problems = _problems(filled)
    assert "audit entry #4 does not link to the entry before it" in problems
    assert "head records 5 entries but the log holds 6" in problems


@pytest.mark.parametrize("seq", [1, 3])
def test_deleted_entry_in_the_middle_is_detected(filled: Registry, raw: Engine, seq: int) -> None:
    with raw.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": seq})
    problems = _problems(filled)
    assert f"audit entry #{seq + 1} found where #{seq} belongs" in problems
    assert "head records 5 entries but the log holds 4" in problems


def test_deleted_last_entry_is_detected(filled: Registry, raw: Engine) -> None:
    with raw.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 5"))
    problems = _problems(filled)
    assert "head records 5 entries but the log holds 4" in problems
    assert "last hash does not match" in problems
    # The update it recorded is now a change nobody logged.
    assert "risks row 2 was changed outside Bastion" in problems


def test_deleting_the_head_row_is_detected(filled: Registry, raw: Engine) -> None:
    with raw.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    assert "audit head row is missing" in _problems(filled)


def test_records_changed_behind_bastions_back_are_detected(filled: Registry, raw: Engine) -> None:
    with raw.begin() as conn:
        conn.execute(text("UPDATE risks SET impact = 1, score = 2 WHERE id = 1"))
        conn.execute(text("DELETE FROM owners"))
        conn.execute(
            text(
                "INSERT INTO risks (id, title, description, likelihood, impact, score, owner,"
                " status, attacks, mitigations, next_review, created_at, updated_at) VALUES"
                " (50, 'quiet', '', 1, 1, 1, 'x', 'closed', '[]', '[]', NULL,"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    problems = _problems(filled)
    assert "risks row 1 was changed outside Bastion" in problems
    assert "owners row 1 was deleted outside Bastion" in problems
    assert "risks row 50 has no audit entry" in problems


def test_a_consistently_rewritten_chain_is_caught_only_by_an_anchor(
    filled: Registry, raw: Engine
) -> None:
    """The documented limit: unkeyed hashes can be recomputed; an external anchor catches it."""
    anchor = filled.audit.verify().head
    with raw.begin() as conn:
        conn.execute(text("UPDATE risks SET owner = 'mallory' WHERE id = 1"))
    # The forger recomputes the row's hash, every later link and the head.
    with Session(filled.database.engine) as session:
        risk_after = row_hash(session.get_one(RiskRow, 1))
    with raw.begin() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log ORDER BY seq")).mappings().all()
        prev = GENESIS
        for row in rows:
            fields = dict(row)
            fields["at"] = _when(fields["at"])
            if fields["entity"] == "risks" and fields["entity_id"] == "1":
                fields["after_hash"] = risk_after
            fields["prev_hash"] = prev
            fields.pop("entry_hash")
            digest = entry_hash(**fields)
            conn.execute(
                text(
                    "UPDATE audit_log SET after_hash = :a, prev_hash = :p, entry_hash = :h"
                    " WHERE seq = :s"
                ),
                {"a": fields["after_hash"], "p": prev, "h": digest, "s": fields["seq"]},
            )
            prev = digest
        conn.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
    assert filled.audit.verify().ok  # the limitation, stated in bastion.registry.audit
    report = filled.audit.verify(expected_head=anchor)
    assert not report.ok
    assert "anchored head" in report.problems[0]
