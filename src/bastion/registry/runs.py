"""Pipeline runs and their stages, kept generic so the pipeline decides what a stage is.

A stage row is keyed by (run, stage name) and carries the hash of its inputs; a later run
whose stage has the same name and input hash can reuse the stored output instead of
recomputing it (``cached``). Each start and finish is its own committed transaction, so a
run killed mid-stage leaves a ``running`` row that the next attempt simply restarts.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.errors import NotFoundError, RegistryError
from bastion.registry.db import Database, Tx
from bastion.registry.hashing import to_jsonable, utc
from bastion.registry.records import PipelineRun, PipelineStage, RunStatus, as_enum
from bastion.registry.tables import PipelineRunRow, PipelineStageRow

__all__ = ["Runs"]

_FINAL = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.REUSED, RunStatus.SKIPPED}


def _run(row: PipelineRunRow) -> PipelineRun:
    return PipelineRun(
        id=row.id,
        run_id=row.run_id,
        pipeline=row.pipeline,
        config_hash=row.config_hash,
        status=RunStatus(row.status),
        started_at=utc(row.started_at),
        finished_at=utc(row.finished_at) if row.finished_at is not None else None,
        created_by=row.created_by,
    )


def _stage(row: PipelineStageRow, run_id: str) -> PipelineStage:
    return PipelineStage(
        id=row.id,
        run_id=run_id,
        name=row.name,
        status=RunStatus(row.status),
        input_hash=row.input_hash,
        output=dict(row.output) if row.output is not None else None,
        error=row.error,
        started_at=utc(row.started_at),
        finished_at=utc(row.finished_at) if row.finished_at is not None else None,
    )


def _find_run(session: Session, run_id: str) -> PipelineRunRow:
    row = session.scalars(select(PipelineRunRow).where(PipelineRunRow.run_id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no pipeline run {run_id!r} in the registry")
    return row


def _find_stage(session: Session, run: PipelineRunRow, name: str) -> PipelineStageRow | None:
    return session.scalars(
        select(PipelineStageRow).where(
            PipelineStageRow.run_pk == run.id, PipelineStageRow.name == name
        )
    ).first()


class Runs:
    """``registry.runs``: pipeline runs, their stages and reusable stage outputs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def start(self, pipeline: str, *, config_hash: str, run_id: str | None = None) -> PipelineRun:
        """Record a new run (``run_id`` defaults to a fresh uuid4 hex)."""
        identifier = run_id or uuid.uuid4().hex
        if len(identifier) > 64:
            raise RegistryError(f"run id must be at most 64 characters, got {len(identifier)}")

        def work(tx: Tx) -> PipelineRun:
            exists = tx.session.scalars(
                select(PipelineRunRow.id).where(PipelineRunRow.run_id == identifier)
            ).first()
            if exists is not None:
                raise RegistryError(f"pipeline run {identifier!r} already exists")
            row = PipelineRunRow(
                run_id=identifier,
                pipeline=pipeline,
                config_hash=config_hash,
                status=RunStatus.RUNNING.value,
                started_at=tx.now,
                finished_at=None,
                created_by=tx.actor,
            )
            tx.insert(row, "run.start")
            return _run(row)

        return self._db.write(work)

    def resume(self, run_id: str) -> PipelineRun:
        """Mark a finished or interrupted run as running again (same id, same stages)."""

        def work(tx: Tx) -> PipelineRun:
            row = _find_run(tx.session, run_id)
            if row.status != RunStatus.RUNNING.value or row.finished_at is not None:
                tx.update(row, "run.resume", status=RunStatus.RUNNING.value, finished_at=None)
            return _run(row)

        return self._db.write(work)

    def finish(self, run_id: str, status: RunStatus | str = RunStatus.SUCCEEDED) -> PipelineRun:
        final = as_enum(RunStatus, status, "run status")
        if final not in _FINAL:
            raise RegistryError(f"a run finishes as one of {sorted(s.value for s in _FINAL)}")

        def work(tx: Tx) -> PipelineRun:
            row = _find_run(tx.session, run_id)
            tx.update(row, "run.finish", status=final.value, finished_at=tx.now)
            return _run(row)

        return self._db.write(work)

    def get(self, run_id: str) -> PipelineRun:
        return self._db.read(lambda s: _run(_find_run(s, run_id)))

    def latest(self, pipeline: str, *, config_hash: str | None = None) -> PipelineRun | None:
        """The newest run of ``pipeline`` (with that config hash, if given), or None."""

        def work(session: Session) -> PipelineRun | None:
            query = select(PipelineRunRow).where(PipelineRunRow.pipeline == pipeline)
            if config_hash is not None:
                query = query.where(PipelineRunRow.config_hash == config_hash)
            row = session.scalars(query.order_by(PipelineRunRow.id.desc())).first()
            return _run(row) if row is not None else None

        return self._db.read(work)

    def list(self, pipeline: str | None = None) -> builtins.list[PipelineRun]:
        def work(session: Session) -> builtins.list[PipelineRun]:
            query = select(PipelineRunRow).order_by(PipelineRunRow.id)
            if pipeline is not None:
                query = query.where(PipelineRunRow.pipeline == pipeline)
            return [_run(r) for r in session.scalars(query).all()]

        return self._db.read(work)

    def start_stage(self, run_id: str, name: str, *, input_hash: str) -> PipelineStage:
        """Mark stage ``name`` of the run as running (restarting it if it ran before)."""

        def work(tx: Tx) -> PipelineStage:
            run = _find_run(tx.session, run_id)
            row = _find_stage(tx.session, run, name)
            if row is None:
                row = PipelineStageRow(
                    run_pk=run.id,
                    name=name,
                    status=RunStatus.RUNNING.value,
                    input_hash=input_hash,
                    output=None,
                    error=None,
                    started_at=tx.now,
                    finished_at=None,
                )
                tx.insert(row, "stage.start")
            else:
                tx.update(
                    row,
                    "stage.restart",
                    status=RunStatus.RUNNING.value,
                    input_hash=input_hash,
                    output=None,
                    error=None,
                    started_at=tx.now,
                    finished_at=None,
                )
            return _stage(row, run.run_id)

        return self._db.write(work)

    def finish_stage(
        self,
        run_id: str,
        name: str,
        *,
        status: RunStatus | str = RunStatus.SUCCEEDED,
        output: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> PipelineStage:
        """Record a stage's outcome and its output (JSON) in one write."""
        final = as_enum(RunStatus, status, "stage status")
        if final not in _FINAL:
            raise RegistryError(f"a stage finishes as one of {sorted(s.value for s in _FINAL)}")
        body = to_jsonable(dict(output), f"output of stage {name!r}") if output else None

        def work(tx: Tx) -> PipelineStage:
            run = _find_run(tx.session, run_id)
            row = _find_stage(tx.session, run, name)
            if row is None:
                raise NotFoundError(f"stage {name!r} was never started in run {run_id!r}")
            tx.update(
                row,
                "stage.finish",
                status=final.value,
                output=body,
                error=error,
                finished_at=tx.now,
            )
            return _stage(row, run.run_id)

        return self._db.write(work)

    def stages(self, run_id: str) -> builtins.list[PipelineStage]:
        def work(session: Session) -> builtins.list[PipelineStage]:
            run = _find_run(session, run_id)
            rows = session.scalars(
                select(PipelineStageRow)
                .where(PipelineStageRow.run_pk == run.id)
                .order_by(PipelineStageRow.id)
            ).all()
            return [_stage(r, run.run_id) for r in rows]

        return self._db.read(work)

    def cached(self, name: str, *, input_hash: str) -> PipelineStage | None:
        """The newest succeeded stage ``name`` with these inputs, in any run, or None."""

        def work(session: Session) -> PipelineStage | None:
            found = session.execute(
                select(PipelineStageRow, PipelineRunRow.run_id)
                .join(PipelineRunRow, PipelineStageRow.run_pk == PipelineRunRow.id)
                .where(
                    PipelineStageRow.name == name,
                    PipelineStageRow.input_hash == input_hash,
                    PipelineStageRow.status == RunStatus.SUCCEEDED.value,
                )
                .order_by(PipelineStageRow.finished_at.desc(), PipelineStageRow.id.desc())
            ).first()
            return _stage(found[0], found[1]) if found is not None else None

        return self._db.read(work)
