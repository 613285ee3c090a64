"""The registry's tables as SQLAlchemy 2 ORM classes — the one description of the schema.

The Alembic migrations under ``migrations/versions`` must produce exactly these tables;
a test compares a migrated database against this metadata, so a change here without a
migration fails CI. Values are plain strings and JSON here; ``records.py`` holds the
typed view callers see. Every timestamp is stored in UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AUDITED",
    "ApiKeyRow",
    "AuditHeadRow",
    "AuditRow",
    "Base",
    "DatasetRow",
    "EvaluationRow",
    "GateDecisionRow",
    "ModelVersionRow",
    "OwnerRow",
    "PipelineRunRow",
    "PipelineStageRow",
    "ReviewItemRow",
    "RiskRow",
    "StageChangeRow",
    "VulnerabilityRow",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME = 200  # registry names, actors, owners
HASH = 64  # sha256 hex
UTC = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTC}  # noqa: RUF012


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        UniqueConstraint("name", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME))
    version: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        Index(None, "name", "stage"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME))
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))
    artifact_path: Mapped[str] = mapped_column(Text)
    artifact_sha256: Mapped[str] = mapped_column(String(HASH))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    config: Mapped[dict[str, Any]]
    dataset_fingerprint: Mapped[str | None] = mapped_column(String(128))
    attack_library_version: Mapped[str | None] = mapped_column(String(64))
    code_version: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))


class EvaluationRow(Base):
    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    threat_model_hash: Mapped[str] = mapped_column(String(HASH))
    record: Mapped[dict[str, Any]]
    measured: Mapped[dict[str, Any]]
    claimed: Mapped[dict[str, Any]]
    sanity_flags: Mapped[list[Any]]
    dataset_fingerprint: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))


class StageChangeRow(Base):
    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    from_stage: Mapped[str] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(NAME))
    at: Mapped[datetime]


class GateDecisionRow(Base):
    __tablename__ = "gate_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    baseline_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"))
    policy: Mapped[dict[str, Any]]
    inputs: Mapped[dict[str, Any]]
    verdict: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))


class PipelineRunRow(Base):
    __tablename__ = "pipeline_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    pipeline: Mapped[str] = mapped_column(String(NAME), index=True)
    config_hash: Mapped[str] = mapped_column(String(HASH))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(NAME))


class PipelineStageRow(Base):
    __tablename__ = "pipeline_stages"
    __table_args__ = (
        UniqueConstraint("run_pk", "name"),
        Index(None, "name", "input_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id"))
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    input_hash: Mapped[str] = mapped_column(String(HASH))
    output: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class ReviewItemRow(Base):
    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(NAME), unique=True)
    model: Mapped[str | None] = mapped_column(String(NAME + 20))
    inputs: Mapped[Any] = mapped_column(JSON)
    outputs: Mapped[Any] = mapped_column(JSON)
    scores: Mapped[dict[str, Any]]
    reasons: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16), index=True)
    label: Mapped[str | None] = mapped_column(String(NAME))
    labelled_by: Mapped[str | None] = mapped_column(String(NAME))
    labelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class OwnerRow(Base):
    __tablename__ = "owners"
    __table_args__ = (UniqueConstraint("component", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    component: Mapped[str] = mapped_column(String(NAME))
    role: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(NAME))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(NAME))


class RiskRow(Base):
    __tablename__ = "risks"
    __table_args__ = (
        CheckConstraint("likelihood BETWEEN 1 AND 5", name="likelihood"),
        CheckConstraint("impact BETWEEN 1 AND 5", name="impact"),
        CheckConstraint("score = likelihood * impact", name="score"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    likelihood: Mapped[int] = mapped_column(Integer)
    impact: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(NAME))
    status: Mapped[str] = mapped_column(String(16))
    attacks: Mapped[list[Any]]
    mitigations: Mapped[list[Any]]
    next_review: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class VulnerabilityRow(Base):
    __tablename__ = "vulnerabilities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(NAME), index=True)
    affected: Mapped[list[Any]]
    reproduction: Mapped[dict[str, Any]]
    owner: Mapped[str] = mapped_column(String(NAME))
    status: Mapped[str] = mapped_column(String(16))
    notes: Mapped[list[Any]]
    remediation: Mapped[str | None] = mapped_column(Text)
    verified_evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApiKeyRow(Base):
    """A server API key: the public ``key_id`` and the sha256 of its secret, never the secret."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(HASH))
    name: Mapped[str] = mapped_column(String(NAME))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME))
    revoked_at: Mapped[datetime | None]


class AuditRow(Base):
    """One link of the chain; ``seq`` is assigned by the writer, never by the database."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(NAME))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    before_hash: Mapped[str | None] = mapped_column(String(HASH))
    after_hash: Mapped[str | None] = mapped_column(String(HASH))
    prev_hash: Mapped[str] = mapped_column(String(HASH))
    entry_hash: Mapped[str] = mapped_column(String(HASH), unique=True)


class AuditHeadRow(Base):
    """The chain's head: its length and last hash, locked by every write (one row, id 1)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(HASH))


# Tables whose every row is covered by the audit log (verify checks each against it).
AUDITED: tuple[type[Base], ...] = (
    DatasetRow,
    ModelVersionRow,
    EvaluationRow,
    StageChangeRow,
    GateDecisionRow,
    PipelineRunRow,
    PipelineStageRow,
    ReviewItemRow,
    OwnerRow,
    RiskRow,
    VulnerabilityRow,
    ApiKeyRow,
)
