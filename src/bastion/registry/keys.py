"""API keys for the guarded server, stored hashed in the registry database.

A key is ``bst_<key id>_<secret>``: the key id is public (it appears in logs, metrics and
``bastion keys list``), the secret is 256 random bits shown once at creation. Only the
sha256 of the secret is stored — for a secret that long a slow password hash adds nothing,
and a fast hash keeps the per-request check cheap — and comparisons are constant-time.

The table lives in the registry's database (same URL, same engine) but beside the audited
tables: it is created on first use by this module and kept out of the audit chain, because
``audit verify`` checks every row of the tables it knows and API keys are operational
secrets rather than governance records. Verified keys are cached for ``cache_seconds`` so
the check costs no database round trip per request; a revocation through the same store
takes effect at once, one made by another process within ``cache_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, String, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bastion.errors import NotFoundError, RegistryError
from bastion.registry.db import Database

__all__ = ["ApiKey", "ApiKeyStore", "CreatedKey"]

_PREFIX = "bst"
_KEY = re.compile(r"^bst_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")


class _KeyBase(DeclarativeBase):
    pass


class ApiKeyRow(_KeyBase):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    name: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: ``token`` is the only time the secret is ever available."""

    key: ApiKey
    token: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _record(row: ApiKeyRow) -> ApiKey:
    def utc(value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        created_at=utc(row.created_at) or row.created_at,
        created_by=row.created_by,
        revoked_at=utc(row.revoked_at),
    )


class ApiKeyStore:
    """Create, list, revoke and verify API keys in the registry database."""

    def __init__(self, database: Database, *, cache_seconds: float = 2.0) -> None:
        self._db = database
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        try:
            _KeyBase.metadata.create_all(database.engine)
        except SQLAlchemyError as exc:
            raise RegistryError(
                f"cannot create the api_keys table on {database.display_url}: {exc}"
            ) from exc

    def create(self, name: str) -> CreatedKey:
        name = name.strip() if isinstance(name, str) else ""
        if not name or len(name) > 200:
            raise RegistryError("an API key needs a name of 1–200 characters (who uses it)")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)

        def work(session: Session) -> ApiKey:
            row = ApiKeyRow(
                key_id=key_id,
                secret_sha256=_digest(secret),
                name=name,
                created_at=datetime.now(UTC),
                created_by=self._db.actor,
                revoked_at=None,
            )
            session.add(row)
            session.flush()
            return _record(row)

        key = self._write(work)
        return CreatedKey(key=key, token=f"{_PREFIX}_{key_id}_{secret}")

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        def work(session: Session) -> list[ApiKey]:
            query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
            if not include_revoked:
                query = query.where(ApiKeyRow.revoked_at.is_(None))
            return [_record(r) for r in session.scalars(query).all()]

        return self._db.read(work)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (revoking twice keeps the first time)."""

        def work(session: Session) -> ApiKey:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"no API key with id {key_id!r}")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            session.flush()
            return _record(row)

        key = self._write(work)
        with self._lock:
            self._cache = {t: v for t, v in self._cache.items() if v[0] != key_id}
        return key

    def verify(self, token: str) -> str | None:
        """The key id of an active key whose secret matches ``token``; else ``None``."""
        match = _KEY.match(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        digest = _digest(secret)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > now and cached[0] == key_id:
            return key_id

        def work(session: Session) -> tuple[str, datetime | None] | None:
            row = session.get(ApiKeyRow, key_id)
            return None if row is None else (row.secret_sha256, row.revoked_at)

        found = self._db.read(work)
        if found is None or found[1] is not None or not hmac.compare_digest(found[0], digest):
            return None
        with self._lock:
            self._cache[digest] = (key_id, now + self._cache_seconds)
        return key_id

    def _write(self, work: Callable[[Session], ApiKey]) -> ApiKey:
        # The registry's write unit gives the lock, retries and error translation; nothing
        # here goes through ``tx.insert``, so no audit entry is made for key rows.
        return self._db.write(lambda tx: work(tx.session))
