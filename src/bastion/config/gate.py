"""The gate policy a candidate must meet before promotion (owned by the pipeline issue)."""

from __future__ import annotations

from pydantic import Field

from bastion.config.base import Section

__all__ = ["GatePolicy"]


class GatePolicy(Section):
    """Thresholds a candidate must meet."""

    min_clean_accuracy: float | None = Field(default=None, ge=0, le=1)
    min_robust_accuracy: float | None = Field(default=None, ge=0, le=1)
