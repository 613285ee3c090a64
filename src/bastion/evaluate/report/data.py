"""The report as data: one JSON-ready dataclass that every rendering reads.

Keeping the content apart from its rendering means the Markdown and HTML say the same thing,
a report can be re-rendered later without touching a model, and a test can check the
numbers without parsing HTML. The headline numbers are copied from one evaluation record
(``evaluation``); the diagnostic series (robustness curve, reliability, per-class, examples)
are measured for the report on ``diagnostics_samples`` test points with the same threat model,
and say so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "CurvePoint",
    "ExampleGrid",
    "PerClass",
    "ReliabilityBins",
    "Report",
]

REPORT_FORMAT = 1


@dataclass(frozen=True)
class CurvePoint:
    """Accuracy of the model under one attack at one budget."""

    attack: str
    eps: float
    accuracy: float
    samples: int


@dataclass(frozen=True)
class ReliabilityBins:
    """Equal-width confidence bins: mean confidence, accuracy and count per bin."""

    label: str
    edges: list[float]
    confidence: list[float | None]
    accuracy: list[float | None]
    counts: list[int]
    ece: float


@dataclass(frozen=True)
class PerClass:
    """Clean and worst-case robust accuracy of one class."""

    label: str
    samples: int
    clean_accuracy: float
    robust_accuracy: float


@dataclass(frozen=True)
class ExampleGrid:
    """A few test images before and after the worst-case attack, with predictions.

    ``clean`` and ``adversarial`` are lists of images, each a nested list (C, H, W) in [0, 1].
    """

    sample_ids: list[int]
    labels: list[str]
    clean: list[Any]
    adversarial: list[Any]
    clean_predictions: list[str]
    adversarial_predictions: list[str]
    attacks: list[str | None]


@dataclass(frozen=True)
class Report:
    """Everything a model version's report shows."""

    model: str
    version: int | None
    created_at: str
    dataset: dict[str, Any]
    threat_model: dict[str, Any]
    evaluation: dict[str, Any]
    gate: dict[str, Any] | None = None
    lineage: list[dict[str, Any]] = field(default_factory=list)
    production: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    robustness_curve: list[CurvePoint] = field(default_factory=list)
    reliability: list[ReliabilityBins] = field(default_factory=list)
    per_class: list[PerClass] = field(default_factory=list)
    examples: ExampleGrid | None = None
    diagnostics_samples: int = 0
    format_version: int = REPORT_FORMAT

    @property
    def title(self) -> str:
        return self.model if self.version is None else f"{self.model}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        examples = data.get("examples")
        return cls(
            **{
                **data,
                "robustness_curve": [CurvePoint(**p) for p in data.get("robustness_curve", [])],
                "reliability": [ReliabilityBins(**r) for r in data.get("reliability", [])],
                "per_class": [PerClass(**p) for p in data.get("per_class", [])],
                "examples": ExampleGrid(**examples) if examples else None,
            }
        )
