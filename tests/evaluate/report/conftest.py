"""A small, real report: a tiny model, synthetic 8x8 images and an evaluation-shaped record."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from bastion.config import ThreatModel
from bastion.evaluate.report import Report, build_report


def _bins(ece: float) -> dict[str, Any]:
    edges = [i / 15 for i in range(16)]
    confidence: list[float | None] = [None] * 15
    accuracy: list[float | None] = [None] * 15
    count = [0] * 15
    for b, (c, a, n) in {14: (0.97, 0.9, 60), 10: (0.7, 0.6, 30), 6: (0.42, 0.5, 10)}.items():
        confidence[b], accuracy[b], count[b] = c, a, n
    return {
        "ece": ece,
        "edges": edges,
        "confidence": confidence,
        "accuracy": accuracy,
        "count": count,
    }


def evaluation_dict(clean: float, robust: float, flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of ``EvaluationRecord.to_dict()`` a report reads."""
    return {
        "clean_accuracy": clean,
        "worst_case_accuracy": robust,
        "ece_clean": 0.03,
        "ece_adversarial": 0.12,
        "channel": "image",
        "classes": ["a", "b", "c"],
        "threat_model_fingerprint": "f" * 64,
        "attacks": [
            {
                "label": "fgsm",
                "name": "fgsm",
                "robust_accuracy": robust + 0.1,
                "cumulative_accuracy": robust + 0.1,
            },
            {
                "label": "pgd",
                "name": "pgd",
                "robust_accuracy": robust,
                "cumulative_accuracy": robust,
            },
        ],
        "calibration": {"clean": _bins(0.03), "adversarial": _bins(0.12)},
        "per_class": [
            {"label": k, "count": 10, "clean_accuracy": clean, "robust_accuracy": robust}
            for k in ("a", "b", "c")
        ],
        "latency": {"p50_ms": 0.1, "p95_ms": 0.2},
        "flags": [{"code": f, "message": f"{f} <raised>", "details": {}} for f in flags],
    }


THREAT = ThreatModel.model_validate(
    {
        "name": "tiny <linf>",
        "image": {
            "attacks": [
                {"name": "fgsm", "params": {"eps": 0.2}},
                {"name": "pgd", "params": {"eps": 0.2, "steps": 5}},
            ]
        },
    }
)


@pytest.fixture(scope="module")
def tiny_report() -> Report:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    x = torch.rand(40, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    gate = {
        "verdict": "fail",
        "promote_to": "staging",
        "checks": [
            {
                "name": "min_clean_accuracy",
                "passed": True,
                "reason": "clean 90% >= 80%",
                "observed": 0.9,
                "threshold": 0.8,
            },
            {
                "name": "max_robust_drop",
                "passed": False,
                "reason": "robust <drop> too big",
                "observed": 0.1,
                "threshold": 0.01,
            },
        ],
    }
    return build_report(
        model_name="tiny",
        version=2,
        evaluation=evaluation_dict(0.9, 0.4, flags=("black_box_stronger",)),
        threat_model=THREAT,
        dataset={"name": "synthetic", "fingerprint": "d" * 64},
        gate=gate,
        lineage=[
            {"name": "tiny", "version": 1, "artifact_sha256": "1" * 64},
            {"name": "tiny", "version": 2, "parent_version": 1},
        ],
        production={"model": "tiny:1", "evaluation": evaluation_dict(0.95, 0.5)},
        calibration={"temperature": 1.7},
        model=model,
        test_data=(x, y, torch.arange(100, 140)),
        classes=("a", "b", "c"),
        curve_samples=20,
        example_samples=10,
    )
