"""The promotion gate: regressions fail with a reason each, non-regressions pass."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.config import GatePolicy
from bastion.errors import GateError
from bastion.evaluate.gate import GateDecision, Verdict, decide, gate_metrics

THREAT = "a" * 64


def record(
    clean: float,
    robust: float,
    *,
    ece: float = 0.05,
    p95: float = 0.4,
    flags: tuple[str, ...] = (),
    threat: str = THREAT,
) -> dict[str, Any]:
    """The fields of ``EvaluationRecord.to_dict()`` the gate reads."""
    return {
        "clean_accuracy": clean,
        "worst_case_accuracy": robust,
        "ece_clean": 0.02,
        "ece_adversarial": ece,
        "latency": {"p50_ms": p95 / 2, "p95_ms": p95},
        "flags": [{"code": f, "message": f"{f} raised", "details": {}} for f in flags],
        "threat_model_fingerprint": threat,
    }


POLICY = GatePolicy(
    min_clean_accuracy=0.9,
    min_robust_accuracy=0.5,
    max_clean_drop=0.02,
    max_robust_drop=0.01,
    max_adversarial_ece=0.2,
    max_latency_p95_ms=5.0,
)


def test_regressing_candidate_fails_with_a_reason_per_regression() -> None:
    production = record(0.97, 0.70)
    candidate = record(0.93, 0.60)  # 4 clean points and 10 robust points worse
    decision = decide(candidate, production, POLICY)
    assert decision.verdict is Verdict.FAIL
    failed = {c.name for c in decision.checks if not c.passed}
    assert failed == {"max_clean_drop", "max_robust_drop"}
    assert any("exceeds" in r and "clean accuracy" in r for r in decision.reasons)
    assert decision.reasons[0].startswith("FAIL")


def test_non_regressing_candidate_passes_every_check() -> None:
    production = record(0.95, 0.60)
    candidate = record(0.945, 0.66)  # half a clean point down (allowed), robust up
    decision = decide(candidate, production, POLICY)
    assert decision.verdict is Verdict.PASS, decision.reasons
    assert all(c.passed for c in decision.checks)
    assert len(decision.reasons) == len(decision.checks) >= 6


def test_absolute_floors_and_ceilings_apply_without_production() -> None:
    decision = decide(record(0.85, 0.4, ece=0.3, p95=9.0), None, POLICY)
    failed = {c.name for c in decision.checks if not c.passed}
    assert failed == {
        "min_clean_accuracy",
        "min_robust_accuracy",
        "max_adversarial_ece",
        "max_latency_p95_ms",
    }
    assert any(c.name == "production" and c.passed for c in decision.checks)


def test_forbidden_flags_any_and_named() -> None:
    flagged = record(0.97, 0.7, flags=("black_box_stronger",))
    strict = decide(flagged, None, GatePolicy())  # default forbids every flag
    assert strict.verdict is Verdict.FAIL
    assert "black_box_stronger" in strict.reasons[0]
    other = decide(flagged, None, GatePolicy(forbidden_flags=["zero_gradients"]))
    assert other.verdict is Verdict.PASS
    assert decide(flagged, None, GatePolicy(forbidden_flags=[])).verdict is Verdict.PASS


def test_production_under_another_threat_model_is_not_compared() -> None:
    decision = decide(record(0.97, 0.7), record(0.5, 0.1, threat="b" * 64), POLICY)
    assert decision.verdict is Verdict.FAIL
    assert any("different threat model" in r for r in decision.reasons)


def test_policy_needing_a_missing_figure_fails_rather_than_passes() -> None:
    data = record(0.97, 0.7)
    del data["ece_adversarial"]
    decision = decide(data, None, GatePolicy(max_adversarial_ece=0.1))
    assert decision.verdict is Verdict.FAIL
    assert "no ECE under attack" in decision.reasons[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"worst_case_accuracy": 0.5}, "no clean_accuracy"),
        ({"clean_accuracy": 0.9}, "worst-case robust accuracy"),
        ({"clean_accuracy": 1.7, "worst_case_accuracy": 0.5}, "must be in [0, 1]"),
        ({"clean_accuracy": "high", "worst_case_accuracy": 0.5}, "must be a number"),
    ],
)
def test_unusable_record_is_an_error_not_a_verdict(data: dict[str, Any], message: str) -> None:
    with pytest.raises(GateError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decide(data, None, POLICY)


def test_decision_round_trips_through_json_form() -> None:
    decision = decide(record(0.93, 0.6), record(0.97, 0.7), POLICY)
    again = GateDecision.from_dict(decision.to_dict())
    assert again == decision
    assert gate_metrics(record(0.9, 0.5)).flags == ()
