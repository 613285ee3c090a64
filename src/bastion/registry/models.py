"""Model versions: registration with lineage, lookup by reference, promotion and rollback.

A version number is allocated inside the write transaction (which holds the registry's
write lock), so concurrent registrations of one name get 1, 2, 3 … with no gaps or
duplicates. The artifact is copied into the content-addressed store *before* the
transaction: a crash in between leaves an unreferenced folder, never a row pointing at
nothing. Every stage change is a row in the stage history, which is what rollback reads.
"""

from __future__ import annotations

import builtins
import functools
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import bastion
from bastion.errors import NotFoundError, RegistryError
from bastion.registry.artifacts import store_artifact, verify_artifact
from bastion.registry.db import Database, Tx
from bastion.registry.hashing import to_jsonable, utc
from bastion.registry.records import ModelVersion, Stage, StageChange, StageChangeKind, as_enum
from bastion.registry.refs import ModelRef, check_name, parse_ref
from bastion.registry.stages import production_stack
from bastion.registry.tables import ModelVersionRow, StageChangeRow

__all__ = ["Models", "current_code_version", "find_version", "to_model_version"]


@functools.cache
def current_code_version() -> str:
    """``bastion.__version__``, plus ``+g<commit>`` (and ``.dirty``) when run from a git tree."""
    here = Path(bastion.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return bastion.__version__
    if not commit:
        return bastion.__version__
    return f"{bastion.__version__}+g{commit}" + (".dirty" if dirty else "")


def find_version(session: Session, ref: str | ModelRef) -> ModelVersionRow:
    """The row a reference names; NotFoundError (saying what exists) when there is none."""
    parsed = parse_ref(ref)
    query = select(ModelVersionRow).where(ModelVersionRow.name == parsed.name)
    if parsed.version is not None:
        query = query.where(ModelVersionRow.version == parsed.version)
    elif parsed.stage is not None:
        query = query.where(ModelVersionRow.stage == parsed.stage.value)
    row = session.scalars(query.order_by(ModelVersionRow.version.desc())).first()
    if row is not None:
        return row
    versions = session.scalars(
        select(ModelVersionRow.version)
        .where(ModelVersionRow.name == parsed.name)
        .order_by(ModelVersionRow.version)
    ).all()
    if not versions:
        raise NotFoundError(f"no model named {parsed.name!r} in the registry")
    if parsed.stage is not None:
        raise NotFoundError(f"no version of {parsed.name!r} is in {parsed.stage.value}")
    raise NotFoundError(
        f"no model version {parsed}; {parsed.name!r} has versions "
        + ", ".join(str(v) for v in versions)
    )


def to_model_version(session: Session, row: ModelVersionRow) -> ModelVersion:
    parent = session.get(ModelVersionRow, row.parent_id) if row.parent_id is not None else None
    return ModelVersion(
        id=row.id,
        name=row.name,
        version=row.version,
        stage=Stage(row.stage),
        artifact_path=Path(row.artifact_path),
        artifact_sha256=row.artifact_sha256,
        parent=f"{parent.name}:{parent.version}" if parent is not None else None,
        config=dict(row.config),
        dataset_fingerprint=row.dataset_fingerprint,
        attack_library_version=row.attack_library_version,
        code_version=row.code_version,
        created_at=utc(row.created_at),
        created_by=row.created_by,
    )


def _stage_change(row: StageChangeRow, model: ModelVersionRow) -> StageChange:
    return StageChange(
        id=row.id,
        model=f"{model.name}:{model.version}",
        from_stage=Stage(row.from_stage),
        to_stage=Stage(row.to_stage),
        kind=StageChangeKind(row.kind),
        reason=row.reason,
        actor=row.actor,
        at=utc(row.at),
    )


def _history_rows(
    session: Session, name: str
) -> builtins.list[tuple[StageChangeRow, ModelVersionRow]]:
    rows = session.execute(
        select(StageChangeRow, ModelVersionRow)
        .join(ModelVersionRow, StageChangeRow.model_version_id == ModelVersionRow.id)
        .where(ModelVersionRow.name == name)
        .order_by(StageChangeRow.id)
    ).all()
    return [(change, model) for change, model in rows]


def _require_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("a reason is required for every stage change")
    return reason.strip()


class Models:
    """``registry.models``: model versions, their lineage and their stage."""

    def __init__(self, db: Database, artifacts: Path) -> None:
        self._db = db
        self._artifacts = artifacts

    def register(
        self,
        name: str,
        *,
        artifact: str | Path,
        config: Mapping[str, Any] | None = None,
        parent: str | ModelRef | None = None,
        dataset_fingerprint: str | None = None,
        attack_library_version: str | None = None,
        code_version: str | None = None,
    ) -> ModelVersion:
        """Copy ``artifact`` into the store and register the next version of ``name``.

        ``parent`` is a reference to the version this one was trained from (any name);
        ``config`` is the configuration snapshot that produced it (stored as JSON).
        """
        check_name(name)
        snapshot = to_jsonable(dict(config or {}), "config snapshot")
        version_text = code_version or current_code_version()
        stored, digest = store_artifact(Path(artifact), self._artifacts)

        def work(tx: Tx) -> ModelVersion:
            parent_id = find_version(tx.session, parent).id if parent is not None else None
            latest = tx.session.scalar(
                select(func.max(ModelVersionRow.version)).where(ModelVersionRow.name == name)
            )
            row = ModelVersionRow(
                name=name,
                version=(latest or 0) + 1,
                stage=Stage.NONE.value,
                artifact_path=str(stored),
                artifact_sha256=digest,
                parent_id=parent_id,
                config=snapshot,
                dataset_fingerprint=dataset_fingerprint,
                attack_library_version=attack_library_version,
                code_version=version_text,
                created_at=tx.now,
                created_by=tx.actor,
            )
            tx.insert(row, "model.register")
            return to_model_version(tx.session, row)

        return self._db.write(work)

    def get(self, ref: str | ModelRef) -> ModelVersion:
        """The version ``ref`` names (``NAME:VERSION``, ``NAME@STAGE`` or ``NAME`` = latest)."""
        return self._db.read(lambda s: to_model_version(s, find_version(s, ref)))

    def production(self, name: str) -> ModelVersion | None:
        """The version of ``name`` in production now, or None."""

        def work(session: Session) -> ModelVersion | None:
            row = session.scalars(
                select(ModelVersionRow).where(
                    ModelVersionRow.name == name, ModelVersionRow.stage == Stage.PRODUCTION.value
                )
            ).first()
            return to_model_version(session, row) if row is not None else None

        return self._db.read(work)

    def list(self, name: str | None = None) -> builtins.list[ModelVersion]:
        """Every version (of ``name``, if given), by name then version."""

        def work(session: Session) -> builtins.list[ModelVersion]:
            query = select(ModelVersionRow).order_by(ModelVersionRow.name, ModelVersionRow.version)
            if name is not None:
                query = query.where(ModelVersionRow.name == name)
            return [to_model_version(session, row) for row in session.scalars(query).all()]

        return self._db.read(work)

    def history(self, name: str) -> builtins.list[StageChange]:
        """Every stage change of any version of ``name``, oldest first."""
        return self._db.read(
            lambda s: [_stage_change(change, model) for change, model in _history_rows(s, name)]
        )

    def verify_artifact(self, ref: str | ModelRef) -> ModelVersion:
        """The version, after checking its stored artifact still has its registered hash."""
        version = self.get(ref)
        verify_artifact(version.artifact_path, version.artifact_sha256)
        return version

    def promote(self, ref: str | ModelRef, stage: Stage | str, *, reason: str) -> ModelVersion:
        """Move a version to ``stage``; a new production version archives the old one."""
        target = as_enum(Stage, stage, "stage")
        if target is Stage.NONE:
            raise RegistryError("cannot promote to stage 'none'; use archived to retire")
        why = _require_reason(reason)

        def work(tx: Tx) -> ModelVersion:
            row = find_version(tx.session, ref)
            if row.stage == target.value:
                raise RegistryError(f"{row.name}:{row.version} is already in {target.value}")
            if target is Stage.PRODUCTION:
                self._archive_production(tx, row.name, f"replaced by version {row.version}")
            self._move(tx, row, target, StageChangeKind.PROMOTE, why)
            return to_model_version(tx.session, row)

        return self._db.write(work)

    def rollback(self, name: str, *, reason: str) -> ModelVersion:
        """Put the previous production version of ``name`` back; archive the current one."""
        check_name(name)
        why = _require_reason(reason)

        def work(tx: Tx) -> ModelVersion:
            history = _history_rows(tx.session, name)
            stack = production_stack(
                (model.version, Stage(change.to_stage), StageChangeKind(change.kind))
                for change, model in history
            )
            current = tx.session.scalars(
                select(ModelVersionRow).where(
                    ModelVersionRow.name == name, ModelVersionRow.stage == Stage.PRODUCTION.value
                )
            ).first()
            if current is None:
                find_version(tx.session, ModelRef(name=name))  # NotFoundError if no such model
                raise RegistryError(f"{name!r} has no version in production to roll back from")
            previous = [v for v in stack[:-1] if v != current.version]
            if not stack or stack[-1] != current.version or not previous:
                raise RegistryError(
                    f"{name}:{current.version} is in production but the stage history has no "
                    "earlier production version to roll back to"
                )
            target = find_version(tx.session, ModelRef(name=name, version=previous[-1]))
            self._move(
                tx,
                current,
                Stage.ARCHIVED,
                StageChangeKind.ARCHIVE,
                f"rolled back to version {target.version}: {why}",
            )
            self._move(tx, target, Stage.PRODUCTION, StageChangeKind.ROLLBACK, why)
            return to_model_version(tx.session, target)

        return self._db.write(work)

    def _archive_production(self, tx: Tx, name: str, why: str) -> None:
        for row in tx.session.scalars(
            select(ModelVersionRow).where(
                ModelVersionRow.name == name, ModelVersionRow.stage == Stage.PRODUCTION.value
            )
        ).all():
            self._move(tx, row, Stage.ARCHIVED, StageChangeKind.ARCHIVE, why)

    @staticmethod
    def _move(tx: Tx, row: ModelVersionRow, to: Stage, kind: StageChangeKind, reason: str) -> None:
        change = StageChangeRow(
            model_version_id=row.id,
            from_stage=row.stage,
            to_stage=to.value,
            kind=kind.value,
            reason=reason,
            actor=tx.actor,
            at=tx.now,
        )
        tx.insert(change, f"stage.{kind.value}")
        tx.update(row, f"model.stage.{to.value}", stage=to.value)
