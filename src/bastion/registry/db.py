"""Connections and transactions: every write atomic, audited, and safe under concurrency.

One rule makes concurrent writers simple: every write transaction first takes the audit
chain's head row (``SELECT … FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE``, the file's
write lock, on SQLite). Writers therefore queue instead of racing, so the chain never
forks and ``max(version) + 1`` is safe; the unique constraints stay as the last line of
defence, and a writer that still collides (or finds SQLite busy past its timeout, or hits
a PostgreSQL serialisation failure) rolls back and retries the whole unit of work.
SQLite runs in WAL mode, so readers never wait for the writer.
"""

from __future__ import annotations

import getpass
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from bastion.errors import RegistryError
from bastion.registry.audit import make_entry
from bastion.registry.hashing import row_hash, row_id
from bastion.registry.migrate import upgrade
from bastion.registry.tables import AuditHeadRow, Base

__all__ = ["ENV_ACTOR", "ENV_URL", "Database", "Tx", "default_actor"]

logger = logging.getLogger(__name__)

ENV_URL = "BASTION_DATABASE_URL"
ENV_ACTOR = "BASTION_ACTOR"
BUSY_TIMEOUT_MS = 30_000
MAX_ATTEMPTS = 30
T = TypeVar("T")

# Unique constraints whose violation means "another writer got there first": retry.
_RACE_CONSTRAINTS = (
    ("uq_model_versions_name_version", "model_versions.name, model_versions.version"),
    ("uq_datasets_name_version", "datasets.name, datasets.version"),
    ("pk_audit_log", "audit_log.seq"),
)
_PG_RETRY_STATES = {"40001", "40P01", "55P03"}  # serialization, deadlock, lock not available


def default_actor() -> str:
    """Who is writing: ``BASTION_ACTOR`` if set, else the operating-system user."""
    actor = os.environ.get(ENV_ACTOR, "").strip()
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _now() -> datetime:
    return datetime.now(UTC)


def _retryable(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    if isinstance(exc, SAIntegrityError):
        return any(pg in message or lite in message for pg, lite in _RACE_CONSTRAINTS)
    if getattr(exc.orig, "sqlstate", None) in _PG_RETRY_STATES:
        return True
    return "database is locked" in message or "database is busy" in message


class Tx:
    """One write transaction: the session plus audited insert/update helpers.

    Only the helpers here change audited rows, so every change lands in the chain.
    """

    def __init__(self, session: Session, actor: str, head: AuditHeadRow) -> None:
        self.session = session
        self.actor = actor
        self.now = _now()
        self._head = head

    def insert(self, row: Base, action: str) -> None:
        """Add ``row``, flush (assigning its id) and log ``action`` with its after-hash."""
        self.session.add(row)
        self.session.flush()
        self._log(action, row, None, row_hash(row))

    def update(self, row: Base, action: str, **values: Any) -> None:
        """Set ``values`` on ``row`` and log ``action`` with before- and after-hashes."""
        before = row_hash(row)
        for key, value in values.items():
            if not hasattr(row, key):
                raise AttributeError(f"{type(row).__name__} has no column {key!r}")
            setattr(row, key, value)
        self.session.flush()
        self._log(action, row, before, row_hash(row))

    def _log(self, action: str, row: Base, before: str | None, after: str | None) -> None:
        self.session.add(
            make_entry(
                self._head,
                at=self.now,
                actor=self.actor,
                action=action,
                entity=str(row.__tablename__),
                entity_id=row_id(row),
                before_hash=before,
                after_hash=after,
            )
        )


class Database:
    """An engine, its migrations applied, and the read/write units of work."""

    def __init__(self, url: str | URL, *, actor: str | None = None) -> None:
        self.actor = actor or default_actor()
        try:
            self.url = make_url(url)
        except ArgumentError as exc:
            raise RegistryError(f"invalid registry database URL {str(url)!r}: {exc}") from exc
        self.display_url = self.url.render_as_string(hide_password=True)
        self.engine = self._create_engine()
        self._write_engine = self.engine.execution_options(bastion_write=True)
        try:
            self._run(lambda: upgrade(self.engine, self._write_engine), "open")
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _create_engine(self) -> Engine:
        url = self.url
        try:
            if url.get_backend_name() == "sqlite":
                return self._sqlite_engine(url)
            return create_engine(url, pool_pre_ping=True)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            hint = " (pip install 'psycopg[binary]')" if "postgres" in url.drivername else ""
            raise RegistryError(f"no database driver for {self.display_url}: {exc}{hint}") from exc
        except (ArgumentError, SQLAlchemyError) as exc:
            raise RegistryError(f"cannot open registry {self.display_url}: {exc}") from exc

    def _sqlite_engine(self, url: URL) -> Engine:
        database = url.database or ""
        memory = database in ("", ":memory:") or "mode=memory" in str(url)
        if memory:
            engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            try:
                Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RegistryError(
                    f"cannot create the folder for the registry {database}: {exc}"
                ) from exc
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take BEGIN away from the sqlite3 module so SQLAlchemy's "begin" below decides.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                if not memory:
                    cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA foreign_keys = ON")
            except sqlite3.OperationalError as exc:
                # Wrapped so that the retry loop sees it like any other "database is locked".
                raise OperationalError("PRAGMA (connection set-up)", None, exc) from exc
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            write = conn.get_execution_options().get("bastion_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _run(self, work: Callable[[], T], what: str) -> T:
        delay = 0.01
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return work()
            except DBAPIError as exc:
                if attempt < MAX_ATTEMPTS and _retryable(exc):
                    logger.debug("registry %s: retry %d after %s", what, attempt, exc.orig)
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 1.0)
                    continue
                raise RegistryError(
                    f"registry {what} failed on {self.display_url}: {exc.orig}"
                ) from exc
            except SQLAlchemyError as exc:
                raise RegistryError(f"registry {what} failed on {self.display_url}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a read transaction (one consistent snapshot)."""

        def attempt() -> T:
            with Session(self.engine) as session, session.begin():
                return work(session)

        return self._run(attempt, "read")

    def write(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one audited write transaction, retried as a whole on races.

        ``work`` may run more than once, so it must only touch the database.
        """

        def attempt() -> T:
            with Session(self._write_engine, autoflush=False) as session, session.begin():
                head = session.execute(
                    select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
                ).scalar_one_or_none()
                if head is None:
                    raise RegistryError("the registry's audit head row is missing (tampering?)")
                return work(Tx(session, self.actor, head))

        return self._run(attempt, "write")

    def close(self) -> None:
        self.engine.dispose()
