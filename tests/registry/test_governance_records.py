"""Owners, the risk register and vulnerability reports with their verified-only-by-evidence rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bastion.errors import NotFoundError, RegistryError
from bastion.registry import (
    OwnerRole,
    Registry,
    Reproduction,
    RiskStatus,
    Severity,
    VulnerabilityStatus,
    check_attack_fixed,
)

MakeArtifact = Callable[..., Path]
TM = "t" * 64


def test_owners_one_per_component_and_role(registry: Registry) -> None:
    registry.owners.set("digits", "threat_modelling", "alice")
    registry.owners.set("digits", OwnerRole.INCIDENT_RESPONSE, "carol")
    registry.owners.set("digits", "threat_modelling", "dave")  # replaces alice
    owners = registry.owners.list("digits")
    assert [(o.role, o.owner) for o in owners] == [
        (OwnerRole.INCIDENT_RESPONSE, "carol"),
        (OwnerRole.THREAT_MODELLING, "dave"),
    ]
    assert registry.owners.get("digits", "threat_modelling").owner == "dave"
    with pytest.raises(NotFoundError):
        registry.owners.get("digits", "attack_simulation")
    with pytest.raises(RegistryError, match="owner role must be one of threat_modelling"):
        registry.owners.set("digits", "janitor", "x")
    log = registry.audit.log(entity="owners")
    assert [e.before_hash is None for e in log] == [True, True, False]


def test_risk_register_scores_and_validates(registry: Registry) -> None:
    risk = registry.risks.add(
        "Patch attack on kiosk camera",
        description="printed stickers",
        likelihood=3,
        impact=5,
        owner="alice",
        attacks=["pgd", "occlusion"],
        mitigations=["adversarial training"],
        next_review="2027-01-15",
    )
    assert risk.score == 15
    assert risk.status is RiskStatus.OPEN
    assert risk.attacks == ("pgd", "occlusion")
    assert risk.next_review == date(2027, 1, 15)
    low = registry.risks.add("minor", likelihood=1, impact=2, owner="bob")
    updated = registry.risks.update(risk.id, likelihood=1, status="mitigating")
    assert updated.score == 5
    assert updated.status is RiskStatus.MITIGATING
    assert updated.impact == 5
    assert updated.title == risk.title
    assert [r.id for r in registry.risks.list()] == [risk.id, low.id]  # by score
    assert [r.id for r in registry.risks.list(status="open")] == [low.id]
    assert [r.id for r in registry.risks.list(due_by=date(2027, 2, 1))] == [risk.id]
    with pytest.raises(RegistryError, match="likelihood must be an integer from 1 to 5, got 6"):
        registry.risks.add("x", likelihood=6, impact=1, owner="a")
    with pytest.raises(RegistryError, match="impact must be an integer from 1 to 5"):
        registry.risks.update(risk.id, impact=0)
    with pytest.raises(RegistryError, match="next review date must be a date as YYYY-MM-DD"):
        registry.risks.add("x", likelihood=1, impact=1, owner="a", next_review="soon")
    with pytest.raises(NotFoundError, match="no risk #99"):
        registry.risks.update(99, status="closed")


# --- vulnerability reports ----------------------------------------------------------------


def _record(broken: dict[str, list[int]], ids: range, robust: set[int]) -> dict[str, Any]:
    """An evaluation record in the shape EvaluationRecord.to_dict() produces (fields used)."""
    return {
        "attacks": [
            {"name": name, "version": "1.0.0", "broken_ids": ids_} for name, ids_ in broken.items()
        ],
        "sample_ids": list(ids),
        "robust_mask": "".join("1" if i in robust else "0" for i in ids),
    }


@pytest.fixture
def reported(registry: Registry, make_artifact: MakeArtifact) -> Registry:
    """digits:1 is broken by pgd on samples 3 and 7; a report is filed and marked fixed."""
    for _ in range(3):
        registry.models.register("digits", artifact=make_artifact())
    registry.evaluations.add(
        "digits:1", threat_model_hash=TM, record=_record({"pgd": [3, 7]}, range(10), {0, 1})
    )
    registry.vulns.new(
        "pgd flips 3 and 7",
        severity="high",
        affected=["digits:1"],
        owner="alice",
        reproduction=Reproduction(
            attack="pgd", attack_version="1.0.0", params={"eps": 0.3}, seed=1, sample_ids=(3, 7)
        ),
    )
    registry.vulns.triage(1, note="confirmed on replay")
    registry.vulns.fix(1, remediation="TRADES beta=6 on digits:2")
    return registry


def test_status_moves_only_one_step_at_a_time(
    registry: Registry, make_artifact: MakeArtifact
) -> None:
    registry.models.register("m", artifact=make_artifact())
    vuln = registry.vulns.from_template(
        {
            "title": "t",
            "severity": "low",
            "affected": ["m:1"],
            "owner": "o",
            "reproduction": {"attack": "fgsm", "attack_version": "1", "sample_ids": [1]},
        }
    )
    assert vuln.status is VulnerabilityStatus.OPEN
    assert vuln.severity is Severity.LOW
    with pytest.raises(RegistryError, match="is open; it cannot become fixed"):
        registry.vulns.fix(vuln.id, remediation="x")
    with pytest.raises(RegistryError, match="is open; it cannot become verified"):
        registry.vulns.verify(vuln.id, evaluation_of="m:1")
    triaged = registry.vulns.triage(vuln.id, severity="critical", owner="bob")
    assert triaged.severity is Severity.CRITICAL
    assert triaged.owner == "bob"
    with pytest.raises(RegistryError, match="is triaged; it cannot become triaged"):
        registry.vulns.triage(vuln.id)
    with pytest.raises(RegistryError, match="remediation notes are required"):
        registry.vulns.fix(vuln.id, remediation=" ")
    assert registry.vulns.fix(vuln.id, remediation="r").status is VulnerabilityStatus.FIXED
    assert [v.id for v in registry.vulns.list(status="fixed", model="m")] == [vuln.id]


_DROP = object()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": _DROP}, "title: Field required"),
        ({"severity": "urgent"}, "severity: Input should be"),
        ({"affected": []}, "affected: List should have at least 1 item"),
        ({"affected": ["m"]}, "NAME:VERSION"),
        ({"affected": ["m:1", "n:1"]}, "of one model"),
        ({"affected": ["m:5"]}, "has versions 1"),
        ({"reproduction": {"attack": "pgd", "attack_version": "1"}}, "sample_ids"),
        ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_bad_reports_are_refused_naming_the_field(
    registry: Registry, make_artifact: MakeArtifact, data: dict[str, Any], message: str
) -> None:
    registry.models.register("m", artifact=make_artifact())
    registry.models.register("n", artifact=make_artifact())
    report: dict[str, Any] = {
        "title": "t",
        "severity": "low",
        "affected": ["m:1"],
        "owner": "o",
        "reproduction": {"attack": "pgd", "attack_version": "1", "sample_ids": [1]},
    }
    for key, value in data.items():
        if value is _DROP:
            report.pop(key)
        else:
            report[key] = value
    with pytest.raises(RegistryError, match=message):
        registry.vulns.from_template(report)
    assert registry.vulns.list() == []


def test_verification_refuses_while_the_attack_still_succeeds(reported: Registry) -> None:
    reported.evaluations.add(
        "digits:2", threat_model_hash=TM, record=_record({"pgd": [7, 9]}, range(10), {3})
    )
    with pytest.raises(RegistryError, match=r"'pgd' still breaks samples \[7\]"):
        reported.vulns.verify(1, evaluation_of="digits:2")
    assert reported.vulns.get(1).status is VulnerabilityStatus.FIXED


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_record({"fgsm": []}, range(10), set(range(10))), "did not run 'pgd'"),
        (_record({"pgd": []}, range(5), set(range(5))), r"did not cover samples \[7\]"),
        (_record({"fgsm": [3], "pgd": []}, range(10), {7}), r"other attacks broke samples first"),
        (_record({"pgd": []}, range(10), {3}), r"samples \[7\] are not robust"),
    ],
)
def test_verification_refuses_evidence_that_does_not_test_the_samples(
    reported: Registry, record: dict[str, Any], reason: str
) -> None:
    reported.evaluations.add("digits:2", threat_model_hash=TM, record=record)
    with pytest.raises(RegistryError, match=reason):
        reported.vulns.verify(1, evaluation_of="digits:2")
    assert reported.vulns.get(1).status is VulnerabilityStatus.FIXED


def test_verification_needs_a_later_version_of_the_same_model(
    reported: Registry, make_artifact: MakeArtifact
) -> None:
    fixed = _record({"pgd": []}, range(10), set(range(10)))
    reported.evaluations.add("digits:1", threat_model_hash=TM, record=fixed)
    with pytest.raises(RegistryError, match="later than the newest affected one"):
        reported.vulns.verify(1, evaluation_of="digits:1")
    reported.models.register("other", artifact=make_artifact())
    other = reported.evaluations.add("other:1", threat_model_hash=TM, record=fixed)
    with pytest.raises(RegistryError, match="the report concerns 'digits'"):
        reported.vulns.verify(1, evaluation_id=other.id)
    with pytest.raises(NotFoundError, match="digits:3 has no evaluation"):
        reported.vulns.verify(1, evaluation_of="digits:3")
    with pytest.raises(NotFoundError):
        reported.vulns.verify(1, evaluation_id=999)
    with pytest.raises(NotFoundError, match="no vulnerability report #5"):
        reported.vulns.verify(5, evaluation_id=other.id)


def test_verification_accepts_an_evaluation_showing_the_fix(reported: Registry) -> None:
    evaluation = reported.evaluations.add(
        "digits:3",
        threat_model_hash=TM,
        record=_record({"fgsm": [1], "pgd": [2]}, range(10), {3, 7, 8}),
    )
    verified = reported.vulns.verify(1, evaluation_of="digits:3")
    assert verified.status is VulnerabilityStatus.VERIFIED
    assert verified.verified_by_evaluation == evaluation.id
    assert "verified by tester with evaluation" in verified.notes[-1]
    assert verified.remediation == "TRADES beta=6 on digits:2"
    with pytest.raises(RegistryError, match="is verified; it cannot become verified"):
        reported.vulns.verify(1, evaluation_of="digits:3")
    actions = [e.action for e in reported.audit.log(entity="vulnerabilities")]
    assert actions == ["vuln.new", "vuln.triage", "vuln.fix", "vuln.verify"]
    assert reported.audit.verify().ok


def test_minimal_record_shape_is_enough_for_the_evidence_check() -> None:
    """The documented minimum: per attack, the ids it broke."""
    ok = check_attack_fixed(
        {"attacks": [{"name": "pgd", "broken_ids": [1]}]}, attack="pgd", sample_ids=[3]
    )
    assert ok.fixed
    assert ok.reasons == ()
    still = check_attack_fixed(
        {"attacks": [{"name": "pgd", "broken_ids": [1]}, {"name": "pgd", "broken_ids": [3]}]},
        attack="pgd",
        sample_ids=[3],
    )
    assert not still.fixed
    with pytest.raises(RegistryError, match="has no 'broken_ids'"):
        check_attack_fixed({"attacks": [{"name": "pgd"}]}, attack="pgd", sample_ids=[3])
    with pytest.raises(RegistryError, match="no 'attacks' list"):
        check_attack_fixed({}, attack="pgd", sample_ids=[3])
    with pytest.raises(RegistryError, match="robust_mask has 2 entries for 3 sample_ids"):
        check_attack_fixed(
            {
                "attacks": [{"name": "pgd", "broken_ids": []}],
                "sample_ids": [1, 2, 3],
                "robust_mask": "11",
            },
            attack="pgd",
            sample_ids=[3],
        )
