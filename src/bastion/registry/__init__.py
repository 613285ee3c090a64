"""The registry: what was trained, on what, how it measured, where it runs — and who said so.

SQLite under ``.bastion/`` by default, any SQLAlchemy URL (PostgreSQL for a team) the same
way. Every write is one transaction that also appends to a hash-chained audit log.

    with Registry.open() as registry:
        v = registry.models.register("digits", artifact="runs/model", config={...})
        registry.evaluations.add(v.ref, threat_model_hash=tm.fingerprint(), record=record)
        registry.models.promote(v.ref, "production", reason="passed the gate")
        registry.audit.verify().ok
"""

from bastion.registry.artifacts import tree_sha256
from bastion.registry.db import ENV_ACTOR, ENV_URL, default_actor
from bastion.registry.evidence import FixCheck, attack_broken_ids, check_attack_fixed
from bastion.registry.models import current_code_version
from bastion.registry.records import (
    AuditEntry,
    AuditReport,
    DatasetRecord,
    EvaluationRecordRow,
    GateDecision,
    GateVerdict,
    ModelVersion,
    NewReviewItem,
    Owner,
    OwnerRole,
    PipelineRun,
    PipelineStage,
    Reproduction,
    ReviewItem,
    ReviewStatus,
    Risk,
    RiskStatus,
    RunStatus,
    Severity,
    Stage,
    StageChange,
    StageChangeKind,
    Vulnerability,
    VulnerabilityStatus,
)
from bastion.registry.refs import ModelRef, parse_ref
from bastion.registry.registry import Registry, resolve_location
from bastion.registry.vulnerabilities import VulnerabilityTemplate

__all__ = [
    "ENV_ACTOR",
    "ENV_URL",
    "AuditEntry",
    "AuditReport",
    "DatasetRecord",
    "EvaluationRecordRow",
    "FixCheck",
    "GateDecision",
    "GateVerdict",
    "ModelRef",
    "ModelVersion",
    "NewReviewItem",
    "Owner",
    "OwnerRole",
    "PipelineRun",
    "PipelineStage",
    "Registry",
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
    "VulnerabilityTemplate",
    "attack_broken_ids",
    "check_attack_fixed",
    "current_code_version",
    "default_actor",
    "parse_ref",
    "resolve_location",
    "tree_sha256",
]
