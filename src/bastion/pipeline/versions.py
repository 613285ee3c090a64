"""Registry-facing steps on one model version: register it once, attach its evaluation once,
gate it, and write its report.

Every write here is idempotent — it first looks for the record it is about to create (the
same artifact content, the same evaluation) and reuses it — because the pipeline may be
killed between any two registry transactions and must, on the next run, finish the job
without leaving duplicates behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bastion import models
from bastion.config import BastionConfig, GatePolicy, parse_config
from bastion.config.threat import Channel
from bastion.data import Dataset, load_dataset
from bastion.errors import GateError, NotFoundError
from bastion.evaluate import EvaluationRecord
from bastion.evaluate.calibration import TemperatureScaled
from bastion.evaluate.gate import GateDecision, decide
from bastion.evaluate.report import build_report, write_report
from bastion.registry import Registry
from bastion.registry.artifacts import tree_sha256
from bastion.registry.records import EvaluationRecordRow, ModelVersion
from bastion.registry.records import GateDecision as GateRow

__all__ = [
    "calibrated_model",
    "ensure_evaluation",
    "ensure_version",
    "gate_version",
    "lineage",
    "version_config",
    "write_version_report",
]


def calibrated_model(folder: str | Path) -> nn.Module:
    """The artifact's network, divided by its fitted temperature when it has one."""
    model = models.load(folder)
    temperature = models.read_spec(folder).extra.get("temperature")
    return TemperatureScaled(model, float(temperature)).eval() if temperature else model


def ensure_version(
    registry: Registry,
    name: str,
    artifact: Path,
    *,
    config: Mapping[str, Any],
    parent: str | None,
    dataset_fingerprint: str | None,
) -> ModelVersion:
    """The version of ``name`` holding exactly this artifact, registering it if none does."""
    digest = tree_sha256(artifact)
    for version in registry.models.list(name):
        if version.artifact_sha256 == digest:
            return version
    from bastion import attacks

    return registry.models.register(
        name,
        artifact=artifact,
        config=config,
        parent=parent,
        dataset_fingerprint=dataset_fingerprint,
        attack_library_version=attacks.LIBRARY_VERSION,
    )


def ensure_evaluation(
    registry: Registry, ref: str, record: EvaluationRecord, threat_model_hash: str
) -> EvaluationRecordRow:
    """The stored copy of ``record`` for ``ref``, adding it if it is not there yet."""
    body = record.to_dict()
    for row in registry.evaluations.list(ref):
        if row.threat_model_hash == threat_model_hash and row.record == body:
            return row
    return registry.evaluations.add(
        ref,
        threat_model_hash=threat_model_hash,
        record=body,
        measured={
            "clean_accuracy": record.clean_accuracy,
            "worst_case_accuracy": record.worst_case_accuracy,
            "ece_clean": record.ece_clean,
            "ece_adversarial": record.ece_adversarial,
            "latency_p95_ms": record.latency.p95_ms,
            **{f"robust_accuracy[{a.label}]": a.robust_accuracy for a in record.attacks},
        },
        sanity_flags=[f.code.value for f in record.flags],
        dataset_fingerprint=record.dataset_fingerprint,
    )


def version_config(version: ModelVersion) -> BastionConfig:
    """The pipeline configuration a version was produced with (its registry snapshot)."""
    return parse_config(dict(version.config), source=f"config snapshot of {version.ref}")


def _production_record(
    registry: Registry, name: str, threat_model_hash: str, exclude: str | None = None
) -> tuple[ModelVersion | None, EvaluationRecordRow | None]:
    current = registry.models.production(name)
    if current is None or current.ref == exclude:
        return None, None
    try:
        return current, registry.evaluations.latest(
            current.ref, threat_model_hash=threat_model_hash
        )
    except NotFoundError:
        try:
            return current, registry.evaluations.latest(current.ref)
        except NotFoundError:
            return current, None


def gate_version(
    registry: Registry, ref: str, policy: GatePolicy | None = None
) -> tuple[GateDecision, GateRow]:
    """Gate the version ``ref`` against ``policy`` (default: the policy in its config
    snapshot) and the version now in production; record and return the decision.

    Raises :class:`GateError` when the version has no evaluation to gate.
    """
    version = registry.models.get(ref)
    if policy is None:
        policy = version_config(version).gate
    try:
        evaluation = registry.evaluations.latest(version.ref)
    except NotFoundError as exc:
        raise GateError(
            f"{version.ref} has no evaluation in the registry; nothing to gate"
        ) from exc
    production, production_eval = _production_record(
        registry, version.name, evaluation.threat_model_hash, exclude=version.ref
    )
    decision = decide(
        evaluation.record, production_eval.record if production_eval else None, policy
    )
    row = registry.gates.record(
        version.ref,
        policy=decision.policy,
        inputs={"decision": decision.to_dict(), "production": production and production.ref},
        verdict=decision.verdict.value,
        reasons=[c.reason for c in decision.checks],
        baseline=production.ref if production else None,
        evaluation_id=evaluation.id,
    )
    return decision, row


def lineage(registry: Registry, version: ModelVersion) -> list[dict[str, Any]]:
    """The version and its ancestors, oldest first, as report rows."""
    chain: list[ModelVersion] = []
    current: ModelVersion | None = version
    seen: set[str] = set()
    while current is not None and current.ref not in seen:
        seen.add(current.ref)
        chain.append(current)
        current = registry.models.get(current.parent) if current.parent else None
    return [
        {
            "name": v.name,
            "version": v.version,
            "parent_version": v.parent,
            "stage": v.stage.value,
            "artifact_sha256": v.artifact_sha256,
            "dataset_fingerprint": v.dataset_fingerprint,
            "attack_library_version": v.attack_library_version,
            "code_version": v.code_version,
            "created_at": v.created_at.isoformat(timespec="seconds"),
            "created_by": v.created_by,
        }
        for v in reversed(chain)
    ]


def write_version_report(
    registry: Registry,
    ref: str,
    home: Path,
    *,
    dataset: Dataset | None = None,
    data_path: Path | None = None,
    out_dir: Path | None = None,
) -> dict[str, Path]:
    """Write the report of version ``ref`` (Markdown, HTML, JSON) and return the paths.

    The headline numbers come from the version's latest evaluation in the registry; the
    robustness curve and example grid are measured on its test split (loaded from the
    config snapshot, or ``dataset`` when the caller holds it; ``data_path`` overrides the
    snapshot's data path).
    """
    version = registry.models.get(ref)
    config = version_config(version)
    try:
        evaluation = registry.evaluations.latest(version.ref)
    except NotFoundError as exc:
        raise NotFoundError(f"{version.ref} has no evaluation; run `bastion run` first") from exc
    gate: dict[str, Any] | None
    try:
        gate_row = registry.gates.latest(version.ref)
        stored = gate_row.inputs.get("decision")
        gate = dict(stored) if isinstance(stored, Mapping) else None
    except NotFoundError:
        gate = None
    production, production_eval = _production_record(
        registry, version.name, evaluation.threat_model_hash, exclude=version.ref
    )
    if dataset is None:
        data_config = config.data
        if data_path is not None:
            data_config = data_config.model_copy(update={"path": data_path})
        dataset = load_dataset(data_config)
    record = dict(evaluation.record)
    record.setdefault("channel", Channel.IMAGE.value)
    model: nn.Module | None = None
    test_data: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    calibration: Any = None
    if record["channel"] == Channel.IMAGE.value:
        # the robustness curve and example grid are image measurements; a text report
        # has the record's tables only
        model = calibrated_model(version.artifact_path)
        x, y = dataset.test.tensors()
        test_data = (x, y, torch.as_tensor(dataset.test.ids, dtype=torch.int64))
        calibration = models.read_spec(version.artifact_path).extra.get("calibration")
    report = build_report(
        model_name=version.name,
        version=version.version,
        evaluation=record,
        threat_model=config.threat_model,
        dataset={
            "name": dataset.name,
            "fingerprint": dataset.fingerprint,
            "source": dataset.source,
            "train / val / test": f"{len(dataset.train)} / {len(dataset.val)} / "
            f"{len(dataset.test)}",
        },
        gate=gate,
        lineage=lineage(registry, version),
        production=(
            {"model": production.ref, "evaluation": dict(production_eval.record)}
            if production is not None and production_eval is not None
            else None
        ),
        calibration=calibration,
        model=model,
        test_data=test_data,
        classes=dataset.classes,
    )
    folder = out_dir or home / "reports" / f"{version.name}-{version.version}"
    return write_report(report, folder)
