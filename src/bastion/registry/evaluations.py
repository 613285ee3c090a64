"""Evaluations and gate decisions: the evidence attached to a model version.

An evaluation keeps the full record as produced (so every number in a report can be traced
to one stored row), the sanity flags raised with it, and two separate dictionaries of
figures: ``measured`` (what Bastion computed) and ``claimed`` (what someone reported).
They are never merged, so a claimed figure cannot pass for a measured one.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.errors import NotFoundError, RegistryError
from bastion.registry.db import Database, Tx
from bastion.registry.hashing import to_jsonable, utc
from bastion.registry.models import find_version
from bastion.registry.records import EvaluationRecordRow, GateDecision, GateVerdict, as_enum
from bastion.registry.refs import ModelRef
from bastion.registry.tables import EvaluationRow, GateDecisionRow, ModelVersionRow

__all__ = ["Evaluations", "Gates", "record_as_dict"]


def record_as_dict(record: Any) -> dict[str, Any]:
    """A mapping, or any object with ``to_dict()`` (e.g. ``EvaluationRecord``), as a dict."""
    if isinstance(record, Mapping):
        return dict(record)
    to_dict = getattr(record, "to_dict", None)
    if callable(to_dict):
        value = to_dict()
        if isinstance(value, Mapping):
            return dict(value)
    raise RegistryError(
        f"an evaluation record must be a mapping or have to_dict(); got {type(record).__name__}"
    )


def _ref(session: Session, model_version_id: int | None) -> str | None:
    if model_version_id is None:
        return None
    row = session.get(ModelVersionRow, model_version_id)
    return f"{row.name}:{row.version}" if row is not None else None


def _evaluation(session: Session, row: EvaluationRow) -> EvaluationRecordRow:
    return EvaluationRecordRow(
        id=row.id,
        model=_ref(session, row.model_version_id) or "?",
        threat_model_hash=row.threat_model_hash,
        record=dict(row.record),
        measured=dict(row.measured),
        claimed=dict(row.claimed),
        sanity_flags=tuple(str(f) for f in row.sanity_flags),
        dataset_fingerprint=row.dataset_fingerprint,
        created_at=utc(row.created_at),
        created_by=row.created_by,
    )


def _gate(session: Session, row: GateDecisionRow) -> GateDecision:
    return GateDecision(
        id=row.id,
        model=_ref(session, row.model_version_id) or "?",
        baseline=_ref(session, row.baseline_id),
        evaluation_id=row.evaluation_id,
        policy=dict(row.policy),
        inputs=dict(row.inputs),
        verdict=GateVerdict(row.verdict),
        reasons=tuple(str(r) for r in row.reasons),
        created_at=utc(row.created_at),
        created_by=row.created_by,
    )


class Evaluations:
    """``registry.evaluations``: store and read evaluation records of model versions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        model: str | ModelRef,
        *,
        threat_model_hash: str,
        record: Any,
        measured: Mapping[str, Any] | None = None,
        claimed: Mapping[str, Any] | None = None,
        sanity_flags: Sequence[str] = (),
        dataset_fingerprint: str | None = None,
    ) -> EvaluationRecordRow:
        """Attach an evaluation of ``model`` (a reference) to the registry."""
        if not threat_model_hash:
            raise RegistryError("threat_model_hash is required (ThreatModel.fingerprint())")
        body = to_jsonable(record_as_dict(record), "evaluation record")
        figures = to_jsonable(dict(measured or {}), "measured figures")
        reported = to_jsonable(dict(claimed or {}), "claimed figures")
        flags = [str(f) for f in sanity_flags]

        def work(tx: Tx) -> EvaluationRecordRow:
            version = find_version(tx.session, model)
            row = EvaluationRow(
                model_version_id=version.id,
                threat_model_hash=threat_model_hash,
                record=body,
                measured=figures,
                claimed=reported,
                sanity_flags=flags,
                dataset_fingerprint=dataset_fingerprint,
                created_at=tx.now,
                created_by=tx.actor,
            )
            tx.insert(row, "evaluation.add")
            return _evaluation(tx.session, row)

        return self._db.write(work)

    def get(self, evaluation_id: int) -> EvaluationRecordRow:
        def work(session: Session) -> EvaluationRecordRow:
            row = session.get(EvaluationRow, evaluation_id)
            if row is None:
                raise NotFoundError(f"no evaluation #{evaluation_id} in the registry")
            return _evaluation(session, row)

        return self._db.read(work)

    def latest(
        self, model: str | ModelRef, *, threat_model_hash: str | None = None
    ) -> EvaluationRecordRow:
        """The newest evaluation of ``model``; NotFoundError if it has none."""

        def work(session: Session) -> EvaluationRecordRow:
            version = find_version(session, model)
            query = select(EvaluationRow).where(EvaluationRow.model_version_id == version.id)
            if threat_model_hash is not None:
                query = query.where(EvaluationRow.threat_model_hash == threat_model_hash)
            row = session.scalars(query.order_by(EvaluationRow.id.desc())).first()
            if row is None:
                raise NotFoundError(f"{version.name}:{version.version} has no evaluation")
            return _evaluation(session, row)

        return self._db.read(work)

    def list(self, model: str | ModelRef) -> builtins.list[EvaluationRecordRow]:
        def work(session: Session) -> builtins.list[EvaluationRecordRow]:
            version = find_version(session, model)
            rows = session.scalars(
                select(EvaluationRow)
                .where(EvaluationRow.model_version_id == version.id)
                .order_by(EvaluationRow.id)
            ).all()
            return [_evaluation(session, r) for r in rows]

        return self._db.read(work)


class Gates:
    """``registry.gates``: the decisions a gate took, with the inputs and every reason."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        model: str | ModelRef,
        *,
        policy: Mapping[str, Any],
        inputs: Mapping[str, Any],
        verdict: GateVerdict | str,
        reasons: Sequence[str],
        baseline: str | ModelRef | None = None,
        evaluation_id: int | None = None,
    ) -> GateDecision:
        outcome = as_enum(GateVerdict, verdict, "gate verdict")
        policy_json = to_jsonable(dict(policy), "gate policy")
        inputs_json = to_jsonable(dict(inputs), "gate inputs")
        why = [str(r) for r in reasons]

        def work(tx: Tx) -> GateDecision:
            version = find_version(tx.session, model)
            base = find_version(tx.session, baseline) if baseline is not None else None
            if evaluation_id is not None and tx.session.get(EvaluationRow, evaluation_id) is None:
                raise NotFoundError(f"no evaluation #{evaluation_id} in the registry")
            row = GateDecisionRow(
                model_version_id=version.id,
                baseline_id=base.id if base is not None else None,
                evaluation_id=evaluation_id,
                policy=policy_json,
                inputs=inputs_json,
                verdict=outcome.value,
                reasons=why,
                created_at=tx.now,
                created_by=tx.actor,
            )
            tx.insert(row, f"gate.{outcome.value}")
            return _gate(tx.session, row)

        return self._db.write(work)

    def latest(self, model: str | ModelRef) -> GateDecision:
        def work(session: Session) -> GateDecision:
            version = find_version(session, model)
            row = session.scalars(
                select(GateDecisionRow)
                .where(GateDecisionRow.model_version_id == version.id)
                .order_by(GateDecisionRow.id.desc())
            ).first()
            if row is None:
                raise NotFoundError(f"{version.name}:{version.version} has no gate decision")
            return _gate(session, row)

        return self._db.read(work)

    def list(self, model: str | ModelRef) -> builtins.list[GateDecision]:
        def work(session: Session) -> builtins.list[GateDecision]:
            version = find_version(session, model)
            rows = session.scalars(
                select(GateDecisionRow)
                .where(GateDecisionRow.model_version_id == version.id)
                .order_by(GateDecisionRow.id)
            ).all()
            return [_gate(session, r) for r in rows]

        return self._db.read(work)
