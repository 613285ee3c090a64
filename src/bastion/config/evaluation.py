"""How an evaluation runs: sample size, batching, calibration bins, latency probes."""

from __future__ import annotations

from pydantic import Field

from bastion.config.base import Section

__all__ = ["EvaluationConfig"]


class EvaluationConfig(Section):
    """Knobs of the robustness evaluation."""

    batch_size: int = Field(default=256, ge=1)
    max_samples: int | None = Field(default=None, gt=0, description="evaluate a prefix")
    standalone: bool = Field(
        default=True,
        description="run every attack on every clean-correct point (per-attack accuracy); "
        "false: each attack only on the points still standing (faster, worst case only)",
    )
    ece_bins: int = Field(default=15, ge=2)
    latency_samples: int = Field(default=100, ge=1)
    seed: int = 0
