"""The registry: one object, opened from a URL, that every other part writes through.

Where it lives is decided once, here: an explicit URL, else ``BASTION_DATABASE_URL``, else
the config's ``url``, else SQLite at ``<home>/registry.db`` (``.bastion/`` by default). The
environment beats the file so that CI can point an unchanged pipeline file at PostgreSQL.
Each topic is a small namespace over one shared database (``registry.models``,
``registry.vulns`` …), so a caller reads ``registry.models.promote(...)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.config.store import RegistryConfig
from bastion.registry.audit import to_entry, verify_chain
from bastion.registry.datasets import Datasets
from bastion.registry.db import ENV_URL, Database
from bastion.registry.evaluations import Evaluations, Gates
from bastion.registry.governance import Owners, Risks
from bastion.registry.models import Models
from bastion.registry.records import AuditEntry, AuditReport
from bastion.registry.review import ReviewQueue
from bastion.registry.runs import Runs
from bastion.registry.tables import AuditRow
from bastion.registry.vulnerabilities import Vulnerabilities

__all__ = ["AuditLog", "Registry", "resolve_location"]


def resolve_location(
    config: RegistryConfig | None = None, *, url: str | None = None
) -> tuple[str, Path]:
    """(database URL, artifact folder) for these settings and the environment."""
    settings = config or RegistryConfig()
    home = Path(settings.home).expanduser()
    store = Path(settings.artifacts).expanduser() if settings.artifacts else home / "artifacts"
    chosen = url or os.environ.get(ENV_URL, "").strip() or settings.url
    if not chosen:
        chosen = f"sqlite:///{(home / 'registry.db').resolve()}"
    return chosen, store.resolve()


class AuditLog:
    """``registry.audit``: read the chain and verify it."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def verify(self, *, expected_head: str | None = None) -> AuditReport:
        """Check every link, the head, and every audited row against its last entry.

        ``expected_head`` is an entry hash recorded outside the database earlier; the
        report then also fails if that entry is no longer in the chain.
        """
        return self._db.read(lambda s: verify_chain(s, expected_head=expected_head))

    def log(
        self,
        *,
        limit: int | None = None,
        entity: str | None = None,
        entity_id: str | int | None = None,
    ) -> list[AuditEntry]:
        """Entries in chain order (the last ``limit`` of them, if given)."""

        def work(session: Session) -> list[AuditEntry]:
            query = select(AuditRow).order_by(AuditRow.seq.desc())
            if entity is not None:
                query = query.where(AuditRow.entity == entity)
            if entity_id is not None:
                query = query.where(AuditRow.entity_id == str(entity_id))
            if limit is not None:
                query = query.limit(limit)
            return [to_entry(r) for r in reversed(session.scalars(query).all())]

        return self._db.read(work)


class Registry:
    """Model versions, evidence, stages, governance, runs, review queue and audit log."""

    def __init__(self, *, database: Database, artifacts: Path) -> None:
        self.database = database
        self.artifacts = artifacts
        self.datasets = Datasets(database)
        self.models = Models(database, artifacts)
        self.evaluations = Evaluations(database)
        self.gates = Gates(database)
        self.runs = Runs(database)
        self.review = ReviewQueue(database)
        self.owners = Owners(database)
        self.risks = Risks(database)
        self.vulns = Vulnerabilities(database)
        self.audit = AuditLog(database)

    @classmethod
    def open(
        cls,
        config: RegistryConfig | None = None,
        *,
        url: str | None = None,
        artifacts: str | Path | None = None,
        actor: str | None = None,
    ) -> Registry:
        """Open (creating and migrating on first use) the registry these settings name."""
        chosen, store = resolve_location(config, url=url)
        database = Database(chosen, actor=actor)
        folder = Path(artifacts).expanduser().resolve() if artifacts else store
        return cls(database=database, artifacts=folder)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.database.display_url

    @property
    def actor(self) -> str:
        return self.database.actor

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.url!r}, artifacts={str(self.artifacts)!r})"
