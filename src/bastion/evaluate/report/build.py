"""Assembling a :class:`Report` from one evaluation record plus the context around it.

The headline figures, the reliability bins and the per-class results are copied from the
record (so the report draws exactly the ECE it quotes); only the robustness curve and the
example grid are measured here, and only when the model and its test data are at hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import torch
from torch import nn

from bastion.config.threat import Channel, ThreatModel
from bastion.errors import EvaluationError
from bastion.evaluate.report.data import PerClass, ReliabilityBins, Report
from bastion.evaluate.report.measure import measure_diagnostics

__all__ = ["build_report"]


def _reliability(record: Mapping[str, Any]) -> list[ReliabilityBins]:
    calibration = record.get("calibration") or {}
    out = []
    for key, label in (("clean", "clean"), ("adversarial", "worst-case attack")):
        bins = calibration.get(key)
        if bins:
            out.append(
                ReliabilityBins(
                    label=label,
                    edges=[float(e) for e in bins["edges"]],
                    confidence=list(bins["confidence"]),
                    accuracy=list(bins["accuracy"]),
                    counts=[int(n) for n in bins["count"]],
                    ece=float(bins["ece"]),
                )
            )
    return out


def _per_class(record: Mapping[str, Any]) -> list[PerClass]:
    return [
        PerClass(
            label=str(row["label"]),
            samples=int(row["count"]),
            clean_accuracy=float(row["clean_accuracy"]),
            robust_accuracy=float(row["robust_accuracy"]),
        )
        for row in record.get("per_class") or []
        if row.get("count") and row.get("clean_accuracy") is not None
    ]


def build_report(
    *,
    model_name: str,
    version: int | None,
    evaluation: Mapping[str, Any],
    threat_model: ThreatModel,
    dataset: Mapping[str, Any],
    gate: Mapping[str, Any] | None = None,
    lineage: Sequence[Mapping[str, Any]] = (),
    production: Mapping[str, Any] | None = None,
    calibration: Mapping[str, Any] | None = None,
    model: nn.Module | None = None,
    test_data: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    classes: Sequence[str] = (),
    curve_samples: int = 100,
    example_samples: int = 32,
) -> Report:
    """A report of ``evaluation`` (the record's ``to_dict()`` form).

    ``test_data`` is ``(x, y, ids)`` of the split the record was measured on; with ``model``
    it adds the robustness curve and the example grid. ``production`` is
    ``{"model": "NAME:VERSION", "evaluation": record dict}`` of the version now serving.
    """
    if "clean_accuracy" not in evaluation:
        raise EvaluationError("cannot build a report: the evaluation record has no clean_accuracy")
    curve = []
    examples = None
    samples = 0
    if model is not None and test_data is not None:
        x, y, ids = test_data
        specs = threat_model.channel(Channel(evaluation.get("channel", "image"))).attacks
        diagnostics = measure_diagnostics(
            model,
            x,
            y,
            ids,
            classes or tuple(evaluation.get("classes", ())),
            specs,
            curve_samples=curve_samples,
            example_samples=example_samples,
        )
        curve, examples, samples = (
            diagnostics.robustness_curve,
            diagnostics.examples,
            diagnostics.samples,
        )
    return Report(
        model=model_name,
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dataset=dict(dataset),
        threat_model=threat_model.model_dump(mode="json"),
        evaluation=dict(evaluation),
        gate=dict(gate) if gate else None,
        lineage=[dict(row) for row in lineage],
        production=dict(production) if production else None,
        calibration=dict(calibration) if calibration else None,
        robustness_curve=curve,
        reliability=_reliability(evaluation),
        per_class=_per_class(evaluation),
        examples=examples,
        diagnostics_samples=samples,
    )
