"""The promotion gate: a pure decision over evaluation records and a policy.

The gate lives beside the evaluation (not in the pipeline or the registry) because it is a
judgement on measured numbers only: given the candidate's evaluation, the production
version's evaluation (or none) and a :class:`~bastion.config.GatePolicy`, it returns a
verdict with one reason per check, failing or passing. It reads nothing and writes nothing,
so CI, the pipeline and a reviewer replaying an old decision all get the same answer; the
caller records the decision.

Comparisons against production are only meaningful under the same threat model, so a
production record measured under a different one fails the comparison check with that reason
rather than silently comparing unlike numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from bastion.config.gate import ANY_FLAG, GatePolicy, PromoteTo
from bastion.errors import GateError

__all__ = ["Check", "GateDecision", "GateMetrics", "Verdict", "decide", "gate_metrics"]


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class GateMetrics:
    """The figures of one evaluation record that a gate looks at."""

    clean_accuracy: float
    robust_accuracy: float
    adversarial_ece: float | None
    latency_p95_ms: float | None
    flags: tuple[str, ...]
    threat_model: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flags": list(self.flags)}


@dataclass(frozen=True)
class Check:
    """One line of a verdict: what was checked, whether it held, and why."""

    name: str
    passed: bool
    reason: str
    observed: float | str | None = None
    threshold: float | str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    """A verdict with every check behind it and the stage a pass leads to."""

    verdict: Verdict
    checks: tuple[Check, ...]
    promote_to: PromoteTo
    candidate: GateMetrics
    production: GateMetrics | None
    policy: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def reasons(self) -> list[str]:
        """Every check's reason, failures first."""
        ordered = sorted(self.checks, key=lambda c: c.passed)
        return [("PASS " if c.passed else "FAIL ") + c.reason for c in ordered]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "promote_to": self.promote_to.value,
            "checks": [c.to_dict() for c in self.checks],
            "candidate": self.candidate.to_dict(),
            "production": self.production.to_dict() if self.production else None,
            "policy": self.policy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateDecision:
        production = data.get("production")
        return cls(
            verdict=Verdict(data["verdict"]),
            checks=tuple(Check(**c) for c in data["checks"]),
            promote_to=PromoteTo(data["promote_to"]),
            candidate=_metrics_from_dict(data["candidate"]),
            production=_metrics_from_dict(production) if production else None,
            policy=dict(data.get("policy", {})),
        )


def _metrics_from_dict(data: Mapping[str, Any]) -> GateMetrics:
    return GateMetrics(**{**data, "flags": tuple(data.get("flags", ()))})


def _as_mapping(record: Any) -> Mapping[str, Any]:
    if isinstance(record, Mapping):
        return record
    to_dict = getattr(record, "to_dict", None)
    if callable(to_dict):
        out = to_dict()
        if isinstance(out, Mapping):
            return out
    raise GateError(f"expected an evaluation record or its dict; got {type(record).__name__}")


def _pick(data: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        node: Any = data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            return node
    return None


def _fraction(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise GateError(f"evaluation record: {what} must be a number; got {value!r}") from exc
    if not 0.0 <= number <= 1.0:
        raise GateError(f"evaluation record: {what} must be in [0, 1]; got {number}")
    return number


def gate_metrics(record: Any) -> GateMetrics:
    """Extract the gated figures from an evaluation record (object or ``to_dict()`` form)."""
    data = _as_mapping(record)
    clean = _pick(data, ("clean_accuracy",))
    robust = _pick(data, ("worst_case_accuracy", "robust_accuracy_worst_case", "worst_case"))
    if isinstance(robust, Mapping):
        robust = robust.get("accuracy")
    if clean is None or robust is None:
        missing = "clean_accuracy" if clean is None else "worst-case robust accuracy"
        raise GateError(f"evaluation record has no {missing}; cannot gate it")
    ece = _pick(data, ("ece_adversarial", "ece_worst_case", "ece.adversarial", "worst_case_ece"))
    latency = _pick(data, ("latency_p95_ms", "latency.p95_ms"))
    flags = _pick(data, ("flags", "sanity_flags")) or ()
    threat = _pick(data, ("threat_model_fingerprint", "threat_model_hash"))
    return GateMetrics(
        clean_accuracy=_fraction(clean, "clean accuracy"),
        robust_accuracy=_fraction(robust, "worst-case robust accuracy"),
        adversarial_ece=None if ece is None else _fraction(ece, "adversarial ECE"),
        latency_p95_ms=None if latency is None else float(latency),
        flags=tuple(sorted(str(_flag_name(f)) for f in flags)),
        threat_model=None if threat is None else str(threat),
    )


def _flag_name(flag: Any) -> str:
    if isinstance(flag, Mapping):
        return str(flag.get("name") or flag.get("code") or flag)
    return str(flag)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _floor(name: str, what: str, value: float, floor: float | None) -> Check | None:
    if floor is None:
        return None
    ok = value >= floor
    relation = ">=" if ok else "<"
    return Check(name, ok, f"{what} {_pct(value)} {relation} minimum {_pct(floor)}", value, floor)


def _drop(
    name: str, what: str, candidate: float, production: float, limit: float | None
) -> Check | None:
    if limit is None:
        return None
    drop = production - candidate
    ok = drop <= limit + 1e-12
    verb = "drop" if drop > 0 else "change"
    return Check(
        name,
        ok,
        f"{what} {_pct(candidate)} vs production {_pct(production)}: {verb} of "
        f"{100 * drop:+.2f} points {'within' if ok else 'exceeds'} the allowed "
        f"{100 * limit:.2f}",
        drop,
        limit,
    )


def decide(candidate: Any, production: Any | None, policy: GatePolicy) -> GateDecision:
    """Gate ``candidate`` (an evaluation record) against ``policy`` and, when given, the
    production version's record. Raises :class:`GateError` only when a record is unusable;
    a candidate that misses the bar gets a ``FAIL`` verdict, not an exception."""
    cand = gate_metrics(candidate)
    prod = gate_metrics(production) if production is not None else None
    checks: list[Check | None] = [
        _floor(
            "min_clean_accuracy", "clean accuracy", cand.clean_accuracy, policy.min_clean_accuracy
        ),
        _floor(
            "min_robust_accuracy",
            "worst-case robust accuracy",
            cand.robust_accuracy,
            policy.min_robust_accuracy,
        ),
    ]
    if policy.max_adversarial_ece is not None:
        if cand.adversarial_ece is None:
            checks.append(
                Check(
                    "max_adversarial_ece",
                    False,
                    "the record has no ECE under attack; the policy requires one",
                )
            )
        else:
            ok = cand.adversarial_ece <= policy.max_adversarial_ece
            checks.append(
                Check(
                    "max_adversarial_ece",
                    ok,
                    f"ECE under attack {cand.adversarial_ece:.4f} "
                    f"{'<=' if ok else '>'} maximum {policy.max_adversarial_ece:.4f}",
                    cand.adversarial_ece,
                    policy.max_adversarial_ece,
                )
            )
    if policy.max_latency_p95_ms is not None:
        if cand.latency_p95_ms is None:
            checks.append(
                Check(
                    "max_latency_p95_ms",
                    False,
                    "the record has no p95 latency; the policy requires one",
                )
            )
        else:
            ok = cand.latency_p95_ms <= policy.max_latency_p95_ms
            checks.append(
                Check(
                    "max_latency_p95_ms",
                    ok,
                    f"p95 latency {cand.latency_p95_ms:.3f} ms "
                    f"{'<=' if ok else '>'} maximum {policy.max_latency_p95_ms:.3f} ms",
                    cand.latency_p95_ms,
                    policy.max_latency_p95_ms,
                )
            )
    checks.append(_flags_check(cand.flags, policy.forbidden_flags))
    checks.extend(_production_checks(cand, prod, policy))
    kept = tuple(c for c in checks if c is not None)
    verdict = Verdict.PASS if all(c.passed for c in kept) else Verdict.FAIL
    return GateDecision(
        verdict=verdict,
        checks=kept,
        promote_to=policy.promote_to,
        candidate=cand,
        production=prod,
        policy=policy.model_dump(mode="json"),
    )


def _flags_check(flags: tuple[str, ...], forbidden: Sequence[str]) -> Check | None:
    if not forbidden:
        return None
    hit = sorted(f for f in flags if ANY_FLAG in forbidden or f in forbidden)
    if hit:
        return Check(
            "forbidden_flags",
            False,
            f"sanity flags raised: {', '.join(hit)}",
            ", ".join(hit),
            ", ".join(forbidden),
        )
    return Check(
        "forbidden_flags",
        True,
        "no forbidden sanity flag raised",
        ", ".join(flags) or None,
        ", ".join(forbidden),
    )


def _production_checks(
    cand: GateMetrics, prod: GateMetrics | None, policy: GatePolicy
) -> list[Check | None]:
    wants = policy.max_clean_drop is not None or policy.max_robust_drop is not None
    if not wants:
        return []
    if prod is None:
        return [Check("production", True, "no production version: nothing to regress against")]
    if cand.threat_model and prod.threat_model and cand.threat_model != prod.threat_model:
        return [
            Check(
                "production",
                False,
                "production was evaluated under a different threat model "
                f"({prod.threat_model[:12]} vs {cand.threat_model[:12]}); re-evaluate it before "
                "comparing",
            )
        ]
    return [
        _drop(
            "max_clean_drop",
            "clean accuracy",
            cand.clean_accuracy,
            prod.clean_accuracy,
            policy.max_clean_drop,
        ),
        _drop(
            "max_robust_drop",
            "worst-case robust accuracy",
            cand.robust_accuracy,
            prod.robust_accuracy,
            policy.max_robust_drop,
        ),
    ]
