"""The gate policy: the bar a candidate must clear before it is promoted.

A policy holds absolute floors (clean and worst-case robust accuracy), ceilings (calibration
error under attack, p95 latency), the largest regression allowed against the version now in
production, and the evaluation sanity flags that must be absent. Every threshold is optional;
``None`` means "not checked". Accuracies, drops and ECE are fractions in [0, 1] (a drop of
0.02 is two points).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from bastion.config.base import Section

__all__ = ["ANY_FLAG", "GatePolicy", "PromoteTo"]

#: in ``forbidden_flags``: every sanity flag the evaluation can raise
ANY_FLAG = "*"


class PromoteTo(StrEnum):
    """Where a candidate that passes the gate goes."""

    STAGING = "staging"
    PRODUCTION = "production"
    NONE = "none"


class GatePolicy(Section):
    """Thresholds a candidate must meet; ``None`` disables a check."""

    min_clean_accuracy: float | None = Field(default=None, ge=0, le=1)
    min_robust_accuracy: float | None = Field(
        default=None, ge=0, le=1, description="floor on the worst case over the whole suite"
    )
    max_clean_drop: float | None = Field(
        default=None, ge=0, le=1, description="largest clean-accuracy loss vs production"
    )
    max_robust_drop: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="largest worst-case robust-accuracy loss vs production",
    )
    max_adversarial_ece: float | None = Field(
        default=None, ge=0, le=1, description="ceiling on ECE on the worst-case adversarial inputs"
    )
    max_latency_p95_ms: float | None = Field(
        default=None, gt=0, description="ceiling on p95 clean inference latency per sample (ms)"
    )
    forbidden_flags: list[str] = Field(
        default_factory=lambda: [ANY_FLAG],
        description="sanity flags that fail the gate; '*' means any flag",
    )
    promote_to: PromoteTo = Field(
        default=PromoteTo.STAGING, description="stage a passing candidate moves to"
    )
