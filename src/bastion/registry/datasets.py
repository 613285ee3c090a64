"""Datasets by content: a name gets a new version only when its fingerprint changes.

Registering the same (name, fingerprint) again returns the existing record, so a pipeline
can register its data on every run without growing the table.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.errors import NotFoundError, RegistryError
from bastion.registry.db import Database, Tx
from bastion.registry.hashing import utc
from bastion.registry.records import DatasetRecord
from bastion.registry.refs import check_name
from bastion.registry.tables import DatasetRow

__all__ = ["Datasets"]


def _record(row: DatasetRow) -> DatasetRecord:
    return DatasetRecord(
        id=row.id,
        name=row.name,
        version=row.version,
        fingerprint=row.fingerprint,
        source=row.source,
        created_at=utc(row.created_at),
        created_by=row.created_by,
    )


class Datasets:
    """``registry.datasets``: register and look up datasets."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def register(self, name: str, *, fingerprint: str, source: str) -> DatasetRecord:
        """The record for (``name``, ``fingerprint``), creating the next version if new."""
        check_name(name, "dataset name")
        if not fingerprint or len(fingerprint) > 128:
            raise RegistryError(
                f"dataset fingerprint must be 1–128 characters, got {fingerprint!r}"
            )

        def work(tx: Tx) -> DatasetRecord:
            found = tx.session.scalars(
                select(DatasetRow).where(
                    DatasetRow.name == name, DatasetRow.fingerprint == fingerprint
                )
            ).first()
            if found is not None:
                return _record(found)
            latest = tx.session.scalar(
                select(func.max(DatasetRow.version)).where(DatasetRow.name == name)
            )
            row = DatasetRow(
                name=name,
                version=(latest or 0) + 1,
                fingerprint=fingerprint,
                source=str(source),
                created_at=tx.now,
                created_by=tx.actor,
            )
            tx.insert(row, "dataset.register")
            return _record(row)

        return self._db.write(work)

    def get(self, name: str, version: int | None = None) -> DatasetRecord:
        """A dataset version (the latest if ``version`` is None); NotFoundError if absent."""

        def work(session: Session) -> DatasetRecord:
            query = select(DatasetRow).where(DatasetRow.name == name)
            if version is None:
                query = query.order_by(DatasetRow.version.desc())
            else:
                query = query.where(DatasetRow.version == version)
            row = session.scalars(query).first()
            if row is None:
                what = name if version is None else f"{name}:{version}"
                raise NotFoundError(f"no dataset {what} in the registry")
            return _record(row)

        return self._db.read(work)

    def by_fingerprint(self, fingerprint: str) -> list[DatasetRecord]:
        """Every registered dataset with this content fingerprint."""

        def work(session: Session) -> list[DatasetRecord]:
            rows = session.scalars(
                select(DatasetRow).where(DatasetRow.fingerprint == fingerprint)
            ).all()
            return [_record(r) for r in rows]

        return self._db.read(work)

    def list(self, name: str | None = None) -> list[DatasetRecord]:
        def work(session: Session) -> list[DatasetRecord]:
            query = select(DatasetRow).order_by(DatasetRow.name, DatasetRow.version)
            if name is not None:
                query = query.where(DatasetRow.name == name)
            return [_record(r) for r in session.scalars(query).all()]

        return self._db.read(work)
