"""Bring a registry database to the schema this Bastion expects, once, on first use.

The Alembic scripts ship inside the package (``migrations/``), so a user never runs
``alembic`` by hand. Several processes may open a fresh database at the same moment (CI
shards, a server's workers), so the upgrade runs under a lock — SQLite's write lock
(``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock — and re-checks the revision inside it.
Alembic is imported only when an upgrade is due: checking an up-to-date database is one
query, which keeps every ``bastion`` command quick to start.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from bastion.errors import RegistryError

__all__ = ["HEAD_REVISION", "SCRIPT_LOCATION", "current_revision", "upgrade"]

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
# The newest script under migrations/versions (a test keeps the two in step).
HEAD_REVISION = "0002"
_PG_LOCK_KEY = 0x0BA57104  # any constant shared by every Bastion process


def current_revision(conn: Connection) -> str | None:
    """The schema revision stored in the database, or None for a fresh one."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise RegistryError(f"the registry has several schema heads: {sorted(rows)}")
    return str(rows[0]) if rows else None


def _check_known(revision: str | None) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    if revision is None:
        return
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    try:
        ScriptDirectory.from_config(config).get_revision(revision)
    except CommandError as exc:
        raise RegistryError(
            f"the registry database is at schema revision {revision!r}, which this Bastion "
            "does not know; it was written by a newer Bastion — upgrade Bastion"
        ) from exc


def upgrade(engine: Engine, write_engine: Engine) -> bool:
    """Upgrade to :data:`HEAD_REVISION` if needed; True when this call migrated.

    ``write_engine`` must begin transactions that hold the database's write lock (the
    registry's SQLite engine emits ``BEGIN IMMEDIATE`` for it).
    """
    with engine.connect() as conn:
        if current_revision(conn) == HEAD_REVISION:
            return False
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    with write_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        now = current_revision(conn)
        if now == HEAD_REVISION:
            return False
        _check_known(now)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return True
