"""API keys join the registry schema and its audit chain.

Before this revision ``bastion.registry.keys`` created ``api_keys`` itself, outside the
migrations, and wrote it without audit entries. A database that already has that table
keeps it and its keys (the columns are the same); each existing key gets an
``api_key.adopt`` entry so that ``audit verify`` covers it from here on. Only the row
hash is logged — the table never held a plaintext secret.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from bastion.registry.audit import entry_hash
from bastion.registry.hashing import canonical_json, sha256_text

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ("key_id", "secret_sha256", "name", "created_at", "created_by", "revoked_at")


def upgrade() -> None:
    bind = op.get_bind()
    if sa.inspect(bind).has_table("api_keys"):
        _adopt_legacy_keys(bind)
        return
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=12), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
    )


def _adopt_legacy_keys(bind: sa.Connection) -> None:
    # Self-contained on purpose (no ORM classes): the hashes must match what
    # ``bastion.registry.hashing.row_hash`` computes for an ``ApiKeyRow`` with these columns.
    keys = sa.table(
        "api_keys",
        sa.column("key_id", sa.String),
        sa.column("secret_sha256", sa.String),
        sa.column("name", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("created_by", sa.String),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
    )
    head = sa.table(
        "audit_head",
        sa.column("id", sa.Integer),
        sa.column("count", sa.Integer),
        sa.column("last_hash", sa.String),
    )
    log = sa.table(
        "audit_log",
        sa.column("seq", sa.Integer),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("entity", sa.String),
        sa.column("entity_id", sa.String),
        sa.column("before_hash", sa.String),
        sa.column("after_hash", sa.String),
        sa.column("prev_hash", sa.String),
        sa.column("entry_hash", sa.String),
    )
    state = sa.select(head.c.count, head.c.last_hash).where(head.c.id == 1)
    count, last = bind.execute(state).one()
    now = datetime.now(UTC)
    rows = bind.execute(sa.select(keys).order_by(keys.c.created_at, keys.c.key_id)).mappings()
    entries = []
    for row in rows.all():
        after = sha256_text(
            canonical_json({"table": "api_keys", "row": {c: row[c] for c in _COLUMNS}})
        )
        count += 1
        fields = {
            "seq": count,
            "at": now,
            "actor": "migration 0002",
            "action": "api_key.adopt",
            "entity": "api_keys",
            "entity_id": str(row["key_id"]),
            "before_hash": None,
            "after_hash": after,
            "prev_hash": last,
        }
        last = entry_hash(**fields)
        entries.append({**fields, "entry_hash": last})
    if entries:
        op.bulk_insert(log, entries)
        bind.execute(sa.update(head).where(head.c.id == 1).values(count=count, last_hash=last))


def downgrade() -> None:
    op.drop_table("api_keys")
