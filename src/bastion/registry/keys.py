"""API keys for the guarded server, stored hashed in the registry database.

A key is ``bst_<key id>_<secret>``: the key id is public (it appears in logs, metrics and
``bastion keys list``), the secret is 256 random bits shown once at creation. Only the
sha256 of the secret is stored — for a secret that long a slow password hash adds nothing,
and a fast hash keeps the per-request check cheap — and comparisons are constant-time.

Who may call the server is a governance fact, so creating and revoking a key are audited
registry writes like any other (``api_key.create``, ``api_key.revoke``): the audit entry
holds the row's hash, which covers the secret's sha256, never the secret. Verified keys are
cached for ``cache_seconds`` so the per-request check costs no database round trip; a
revocation through the same store takes effect at once, one made by another process within
``cache_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.errors import NotFoundError, RegistryError
from bastion.registry.db import Database, Tx
from bastion.registry.tables import ApiKeyRow

__all__ = ["ApiKey", "ApiKeyStore", "CreatedKey"]

_PREFIX = "bst"
_KEY = re.compile(r"^bst_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")


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

    def create(self, name: str) -> CreatedKey:
        name = name.strip() if isinstance(name, str) else ""
        if not name or len(name) > 200:
            raise RegistryError("an API key needs a name of 1–200 characters (who uses it)")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)

        def work(tx: Tx) -> ApiKey:
            row = ApiKeyRow(
                key_id=key_id,
                secret_sha256=_digest(secret),
                name=name,
                created_at=tx.now,
                created_by=tx.actor,
                revoked_at=None,
            )
            tx.insert(row, "api_key.create")
            return _record(row)

        key = self._db.write(work)
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

        def work(tx: Tx) -> ApiKey:
            row = tx.session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"no API key with id {key_id!r}")
            if row.revoked_at is None:
                tx.update(row, "api_key.revoke", revoked_at=tx.now)
            return _record(row)

        key = self._db.write(work)
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
