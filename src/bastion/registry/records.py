"""The registry's typed vocabulary: enums for every closed set, frozen dataclasses for rows.

Callers never hold ORM objects (they are bound to a session that is gone once a call
returns); they get these immutable values instead. Enums are the inside representation;
``str`` values are accepted at the public methods and converted once, with an error that
lists what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from bastion.errors import RegistryError

__all__ = [
    "AuditEntry",
    "AuditReport",
    "DatasetRecord",
    "EvaluationRecordRow",
    "GateDecision",
    "GateVerdict",
    "ModelVersion",
    "NewReviewItem",
    "Owner",
    "OwnerRole",
    "PipelineRun",
    "PipelineStage",
    "Reproduction",
    "ReviewItem",
    "ReviewStatus",
    "Risk",
    "RiskStatus",
    "RunStatus",
    "Severity",
    "Stage",
    "StageChange",
    "StageChangeKind",
    "Vulnerability",
    "VulnerabilityStatus",
    "as_enum",
]


class Stage(StrEnum):
    """Where a model version is in its life: registered, staged, serving, retired."""

    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class StageChangeKind(StrEnum):
    """Why a stage changed: asked for, a rollback, or a side effect of a new production."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"
    ARCHIVE = "archive"


class GateVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"


class OwnerRole(StrEnum):
    """The responsibilities a component must have a named person for."""

    THREAT_MODELLING = "threat_modelling"
    ATTACK_SIMULATION = "attack_simulation"
    INCIDENT_RESPONSE = "incident_response"


class RiskStatus(StrEnum):
    OPEN = "open"
    MITIGATING = "mitigating"
    ACCEPTED = "accepted"
    CLOSED = "closed"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class VulnerabilityStatus(StrEnum):
    """open → triaged → fixed → verified; no other move is allowed."""

    OPEN = "open"
    TRIAGED = "triaged"
    FIXED = "fixed"
    VERIFIED = "verified"


class RunStatus(StrEnum):
    """Status of a pipeline run or one of its stages."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REUSED = "reused"
    SKIPPED = "skipped"


class ReviewStatus(StrEnum):
    PENDING = "pending"
    LABELLED = "labelled"


E = TypeVar("E", bound=StrEnum)


def as_enum(kind: type[E], value: E | str, what: str) -> E:
    """Convert a string at the edge into ``kind``; the error names ``what`` and the choices."""
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise RegistryError(f"{what} must be one of {allowed}; got {value!r}") from None


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    id: int
    name: str
    version: int
    fingerprint: str
    source: str
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered model version and its lineage."""

    id: int
    name: str
    version: int
    stage: Stage
    artifact_path: Path
    artifact_sha256: str
    parent: str | None
    config: dict[str, Any]
    dataset_fingerprint: str | None
    attack_library_version: str | None
    code_version: str
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        """``NAME:VERSION``, the form every command accepts."""
        return f"{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class EvaluationRecordRow:
    """A stored evaluation: the full record plus the figures pulled out of it.

    ``measured`` holds figures Bastion computed itself; ``claimed`` holds figures someone
    reported (a paper, a vendor) and is never mixed with ``measured``.
    """

    id: int
    model: str
    threat_model_hash: str
    record: dict[str, Any]
    measured: dict[str, Any]
    claimed: dict[str, Any]
    sanity_flags: tuple[str, ...]
    dataset_fingerprint: str | None
    created_at: datetime
    created_by: str

    @property
    def unreliable(self) -> bool:
        """True when any sanity check raised a flag: the figures may overstate robustness."""
        return bool(self.sanity_flags)


@dataclass(frozen=True, slots=True)
class StageChange:
    id: int
    model: str
    from_stage: Stage
    to_stage: Stage
    kind: StageChangeKind
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class GateDecision:
    id: int
    model: str
    baseline: str | None
    evaluation_id: int | None
    policy: dict[str, Any]
    inputs: dict[str, Any]
    verdict: GateVerdict
    reasons: tuple[str, ...]
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class PipelineRun:
    id: int
    run_id: str
    pipeline: str
    config_hash: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    created_by: str


@dataclass(frozen=True, slots=True)
class PipelineStage:
    id: int
    run_id: str
    name: str
    status: RunStatus
    input_hash: str
    output: dict[str, Any] | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewReviewItem:
    """A request to queue for review, as given to ``registry.review.add_many``."""

    request_id: str
    inputs: Any
    outputs: Any
    scores: Mapping[str, Any] = field(default_factory=dict)
    reasons: Sequence[str] = ()
    model: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewItem:
    id: int
    request_id: str
    model: str | None
    inputs: Any
    outputs: Any
    scores: dict[str, Any]
    reasons: tuple[str, ...]
    status: ReviewStatus
    label: str | None
    labelled_by: str | None
    labelled_at: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as written by the export."""
        return {
            "request_id": self.request_id,
            "model": self.model,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "scores": self.scores,
            "reasons": list(self.reasons),
            "status": self.status.value,
            "label": self.label,
            "labelled_by": self.labelled_by,
            "labelled_at": self.labelled_at.isoformat() if self.labelled_at else None,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Owner:
    component: str
    role: OwnerRole
    owner: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class Risk:
    id: int
    title: str
    description: str
    likelihood: int
    impact: int
    score: int
    owner: str
    status: RiskStatus
    attacks: tuple[str, ...]
    mitigations: tuple[str, ...]
    next_review: date | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Reproduction:
    """How to make the attack succeed again: everything needed to replay it exactly."""

    attack: str
    attack_version: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    sample_ids: tuple[int, ...] = ()
    dataset_fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "attack_version": self.attack_version,
            "params": dict(self.params),
            "seed": self.seed,
            "sample_ids": list(self.sample_ids),
            "dataset_fingerprint": self.dataset_fingerprint,
        }


@dataclass(frozen=True, slots=True)
class Vulnerability:
    id: int
    title: str
    severity: Severity
    affected: tuple[str, ...]
    reproduction: Reproduction
    owner: str
    status: VulnerabilityStatus
    notes: tuple[str, ...]
    remediation: str | None
    verified_by_evaluation: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before_hash: str | None
    after_hash: str | None
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The result of checking the chain and every audited row against it."""

    entries: int
    head: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems
