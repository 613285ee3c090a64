"""Bring a registry database to the schema this Bastion expects, once, on first use.

The Alembic scripts ship inside the package (``migrations/``), so a user never runs
``alembic`` by hand. Several processes may open a fresh database at the same moment (CI
shards, a server's workers), so the upgrade runs under a lock — SQLite's write lock
(``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock — and re-checks the revision inside it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text

from bastion.errors import RegistryError

__all__ = ["SCRIPT_LOCATION", "current_revision", "head_revision", "upgrade"]

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x0BA57104  # any constant shared by every Bastion process


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a migration
        raise RegistryError("no registry migrations found in the installed package")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, write_engine: Engine) -> bool:
    """Upgrade to the newest revision if needed; True when this call migrated.

    ``write_engine`` must begin transactions that hold the database's write lock (the
    registry's SQLite engine emits ``BEGIN IMMEDIATE`` for it).
    """
    head = head_revision()
    if current_revision(engine) == head:
        return False
    config = _config()
    try:
        with write_engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            now = MigrationContext.configure(conn).get_current_revision()
            if now == head:
                return False
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except CommandError as exc:
        raise RegistryError(
            f"cannot upgrade the registry schema ({exc}); the database may have been "
            "written by a newer Bastion"
        ) from exc
    return True
