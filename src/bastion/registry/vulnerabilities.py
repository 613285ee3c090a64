"""Vulnerability reports: filed from a template, moved open → triaged → fixed → verified.

The last step is the one that matters and the one that is easiest to fake, so nothing can
set it directly: ``verify`` takes an evaluation of a *later* version of the same model and
checks, sample by sample, that the recorded attack no longer succeeds on the recorded
samples (``evidence.check_attack_fixed``). A report whose evidence falls short stays
``fixed`` and the error lists every reason.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.config.base import Section
from bastion.errors import NotFoundError, RegistryError
from bastion.registry.db import Database, Tx
from bastion.registry.evidence import check_attack_fixed
from bastion.registry.hashing import to_jsonable, utc
from bastion.registry.models import find_version
from bastion.registry.records import (
    Reproduction,
    Severity,
    Vulnerability,
    VulnerabilityStatus,
    as_enum,
)
from bastion.registry.refs import ModelRef, parse_ref
from bastion.registry.tables import EvaluationRow, ModelVersionRow, VulnerabilityRow

__all__ = ["ReproductionTemplate", "Vulnerabilities", "VulnerabilityTemplate"]

_NEXT = {
    VulnerabilityStatus.OPEN: VulnerabilityStatus.TRIAGED,
    VulnerabilityStatus.TRIAGED: VulnerabilityStatus.FIXED,
    VulnerabilityStatus.FIXED: VulnerabilityStatus.VERIFIED,
}


class ReproductionTemplate(Section):
    """Exactly what to replay: attack, its version and parameters, seed and samples."""

    attack: str = Field(min_length=1, description="attack registry name, e.g. 'pgd'")
    attack_version: str = Field(min_length=1, description="the attack's version when found")
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    sample_ids: list[int] = Field(min_length=1, description="ids of the samples it broke")
    dataset_fingerprint: str | None = None


class VulnerabilityTemplate(Section):
    """The file ``bastion vuln new --from FILE`` reads (``--template`` prints one)."""

    title: str = Field(min_length=1, max_length=300)
    severity: Severity
    affected: list[str] = Field(min_length=1, description="NAME:VERSION of affected models")
    owner: str = Field(min_length=1, max_length=200)
    reproduction: ReproductionTemplate


def template() -> dict[str, Any]:
    """A filled-in example of the report template, for a person to edit."""
    return {
        "title": "PGD (eps 0.3) flips digits 3 -> 8",
        "severity": "high",
        "affected": ["digits:1"],
        "owner": "alice",
        "reproduction": {
            "attack": "pgd",
            "attack_version": "1.0.0",
            "params": {"eps": 0.3, "steps": 20},
            "seed": 0,
            "sample_ids": [17, 40],
            "dataset_fingerprint": None,
        },
    }


def _reproduction(data: Mapping[str, Any]) -> Reproduction:
    return Reproduction(
        attack=str(data["attack"]),
        attack_version=str(data["attack_version"]),
        params=dict(data.get("params") or {}),
        seed=int(data.get("seed", 0)),
        sample_ids=tuple(int(i) for i in data.get("sample_ids", ())),
        dataset_fingerprint=data.get("dataset_fingerprint"),
    )


def _vulnerability(row: VulnerabilityRow) -> Vulnerability:
    return Vulnerability(
        id=row.id,
        title=row.title,
        severity=Severity(row.severity),
        affected=tuple(str(a) for a in row.affected),
        reproduction=_reproduction(row.reproduction),
        owner=row.owner,
        status=VulnerabilityStatus(row.status),
        notes=tuple(str(n) for n in row.notes),
        remediation=row.remediation,
        verified_by_evaluation=row.verified_evaluation_id,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def _find(session: Session, vuln_id: int) -> VulnerabilityRow:
    row = session.get(VulnerabilityRow, vuln_id)
    if row is None:
        raise NotFoundError(f"no vulnerability report #{vuln_id}")
    return row


def _advance(row: VulnerabilityRow, to: VulnerabilityStatus) -> None:
    """Refuse any move but the next one in open → triaged → fixed → verified."""
    now = VulnerabilityStatus(row.status)
    if _NEXT.get(now) is not to:
        raise RegistryError(
            f"vulnerability #{row.id} is {now.value}; it cannot become {to.value} "
            "(open → triaged → fixed → verified, one step at a time)"
        )


def _template_error(exc: ValidationError) -> RegistryError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "report"
    return RegistryError(f"invalid vulnerability report: {where}: {first['msg']}")


def _pick_evaluation(
    session: Session, ref: str | ModelRef | None, evaluation_id: int | None
) -> EvaluationRow:
    if evaluation_id is not None:
        found = session.get(EvaluationRow, evaluation_id)
        if found is None:
            raise NotFoundError(f"no evaluation #{evaluation_id} in the registry")
        return found
    if ref is None:
        raise RegistryError("give the model whose newest evaluation verifies the fix")
    version = find_version(session, ref)
    latest = session.scalars(
        select(EvaluationRow)
        .where(EvaluationRow.model_version_id == version.id)
        .order_by(EvaluationRow.id.desc())
    ).first()
    if latest is None:
        raise NotFoundError(f"{version.name}:{version.version} has no evaluation")
    return latest


def _verification_problems(
    row: VulnerabilityRow, evaluation: EvaluationRow, model: ModelVersionRow
) -> list[str]:
    repro = _reproduction(row.reproduction)
    if model.name != row.model_name:
        return [f"the evaluation is of {model.name!r}, the report concerns {row.model_name!r}"]
    newest = max(parse_ref(a).version or 0 for a in row.affected)
    if model.version <= newest:
        return [
            f"the evaluation is of version {model.version}; verification needs a version "
            f"later than the newest affected one ({newest})"
        ]
    reasons: list[str] = []
    data_print = evaluation.dataset_fingerprint or evaluation.record.get("dataset_fingerprint")
    if repro.dataset_fingerprint and data_print and data_print != repro.dataset_fingerprint:
        reasons.append(
            "the evaluation used a different dataset (fingerprint mismatch), so the "
            "sample ids do not name the same samples"
        )
    check = check_attack_fixed(evaluation.record, attack=repro.attack, sample_ids=repro.sample_ids)
    return reasons + list(check.reasons)


class Vulnerabilities:
    """``registry.vulns``: vulnerability reports and their enforced life cycle."""

    def __init__(self, db: Database) -> None:
        self._db = db

    template = staticmethod(template)

    def new(
        self,
        title: str,
        *,
        severity: Severity | str,
        affected: Sequence[str | ModelRef],
        reproduction: Reproduction | Mapping[str, Any],
        owner: str,
    ) -> Vulnerability:
        """File a report (status open). ``affected`` are versions of one model."""
        repro = reproduction.to_dict() if isinstance(reproduction, Reproduction) else reproduction
        return self.from_template(
            {
                "title": title,
                "severity": as_enum(Severity, severity, "severity").value,
                "affected": [str(a) for a in affected],
                "owner": owner,
                "reproduction": dict(repro),
            }
        )

    def from_template(self, data: Mapping[str, Any]) -> Vulnerability:
        """File a report from a filled-in template (see :func:`template`)."""
        try:
            report = VulnerabilityTemplate.model_validate(data)
        except ValidationError as exc:
            raise _template_error(exc) from exc
        refs = [parse_ref(a, allow_bare=False) for a in report.affected]
        if any(r.version is None for r in refs):
            raise RegistryError("affected versions must be given as NAME:VERSION")
        names = {r.name for r in refs}
        if len(names) != 1:
            raise RegistryError(
                f"affected versions must be of one model; got {', '.join(sorted(names))}"
            )
        reproduction = to_jsonable(report.reproduction.model_dump(), "reproduction")

        def work(tx: Tx) -> Vulnerability:
            rows = [find_version(tx.session, r) for r in refs]
            row = VulnerabilityRow(
                title=report.title.strip(),
                severity=report.severity.value,
                model_name=rows[0].name,
                affected=sorted({f"{r.name}:{r.version}" for r in rows}),
                reproduction=reproduction,
                owner=report.owner.strip(),
                status=VulnerabilityStatus.OPEN.value,
                notes=[],
                remediation=None,
                verified_evaluation_id=None,
                created_at=tx.now,
                updated_at=tx.now,
            )
            tx.insert(row, "vuln.new")
            return _vulnerability(row)

        return self._db.write(work)

    def get(self, vuln_id: int) -> Vulnerability:
        return self._db.read(lambda s: _vulnerability(_find(s, vuln_id)))

    def list(
        self, *, status: VulnerabilityStatus | str | None = None, model: str | None = None
    ) -> builtins.list[Vulnerability]:
        wanted = as_enum(VulnerabilityStatus, status, "status") if status is not None else None

        def work(session: Session) -> builtins.list[Vulnerability]:
            query = select(VulnerabilityRow).order_by(VulnerabilityRow.id)
            if wanted is not None:
                query = query.where(VulnerabilityRow.status == wanted.value)
            if model is not None:
                query = query.where(VulnerabilityRow.model_name == model)
            return [_vulnerability(r) for r in session.scalars(query).all()]

        return self._db.read(work)

    def triage(
        self,
        vuln_id: int,
        *,
        note: str | None = None,
        owner: str | None = None,
        severity: Severity | str | None = None,
    ) -> Vulnerability:
        """open → triaged, optionally re-assigning the owner or the severity."""
        level = as_enum(Severity, severity, "severity") if severity is not None else None

        def work(tx: Tx) -> Vulnerability:
            row = _find(tx.session, vuln_id)
            _advance(row, VulnerabilityStatus.TRIAGED)
            changes: dict[str, Any] = {
                "status": VulnerabilityStatus.TRIAGED.value,
                "updated_at": tx.now,
                "notes": [*row.notes, f"triaged by {tx.actor}: {note}" if note else "triaged"],
            }
            if owner:
                changes["owner"] = owner.strip()
            if level is not None:
                changes["severity"] = level.value
            tx.update(row, "vuln.triage", **changes)
            return _vulnerability(row)

        return self._db.write(work)

    def fix(self, vuln_id: int, *, remediation: str) -> Vulnerability:
        """triaged → fixed, with remediation notes (what was changed, where)."""
        if not isinstance(remediation, str) or not remediation.strip():
            raise RegistryError("remediation notes are required to mark a report fixed")

        def work(tx: Tx) -> Vulnerability:
            row = _find(tx.session, vuln_id)
            _advance(row, VulnerabilityStatus.FIXED)
            tx.update(
                row,
                "vuln.fix",
                status=VulnerabilityStatus.FIXED.value,
                remediation=remediation.strip(),
                updated_at=tx.now,
            )
            return _vulnerability(row)

        return self._db.write(work)

    def verify(
        self,
        vuln_id: int,
        *,
        evaluation_of: str | ModelRef | None = None,
        evaluation_id: int | None = None,
    ) -> Vulnerability:
        """fixed → verified, only if an evaluation of a later version shows the fix.

        Give the evaluation by id, or ``evaluation_of`` a model reference (its newest
        evaluation is used). Raises RegistryError listing every reason when it does not.
        """
        if (evaluation_of is None) == (evaluation_id is None):
            raise RegistryError("give exactly one of evaluation_of (NAME:VERSION) or evaluation_id")

        def work(tx: Tx) -> Vulnerability:
            row = _find(tx.session, vuln_id)
            _advance(row, VulnerabilityStatus.VERIFIED)
            evaluation = _pick_evaluation(tx.session, evaluation_of, evaluation_id)
            model = tx.session.get(ModelVersionRow, evaluation.model_version_id)
            if model is None:
                raise NotFoundError(f"evaluation #{evaluation.id} names a missing model version")
            reasons = _verification_problems(row, evaluation, model)
            if reasons:
                raise RegistryError(
                    f"vulnerability #{row.id} not verified by evaluation #{evaluation.id} of "
                    f"{model.name}:{model.version}: " + "; ".join(reasons)
                )
            tx.update(
                row,
                "vuln.verify",
                status=VulnerabilityStatus.VERIFIED.value,
                verified_evaluation_id=evaluation.id,
                notes=[
                    *row.notes,
                    f"verified by {tx.actor} with evaluation #{evaluation.id} of "
                    f"{model.name}:{model.version}",
                ],
                updated_at=tx.now,
            )
            return _vulnerability(row)

        return self._db.write(work)
