"""Accuracy and calibration over arrays of predictions, kept apart from the engine so that the
same definitions serve the evaluation record, reports and the tests that pin them down.

Calibration follows Guo et al. (2017): confidences are cut into ``bins`` equal-width bins,
bin ``b`` holding confidences in ``(b/bins, (b+1)/bins]`` (the first bin also holds 0), and

    ECE = sum_b (n_b / n) * |accuracy_b - confidence_b|.

The per-bin means are kept (:class:`Reliability`) because a reliability diagram is drawn
from exactly these numbers, and a report must draw the ECE it quotes, not a recomputation.
Everything is vectorised with ``numpy.bincount``: no per-sample Python loops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from bastion.errors import EvaluationError

__all__ = [
    "Reliability",
    "accuracy",
    "expected_calibration_error",
    "per_class_accuracy",
    "reliability",
    "reliability_from_logits",
]

FloatArray = npt.NDArray[np.float64]


def accuracy(predicted: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Fraction of ``predicted == labels``; 0.0 for an empty set is refused."""
    p, y = np.asarray(predicted), np.asarray(labels)
    if p.shape != y.shape:
        raise EvaluationError(f"accuracy: shapes differ: {p.shape} vs {y.shape}")
    if p.size == 0:
        raise EvaluationError("accuracy of an empty set of predictions is undefined")
    return float(np.mean(p == y))


def per_class_accuracy(
    correct: npt.ArrayLike, labels: npt.ArrayLike, num_classes: int
) -> list[float | None]:
    """Mean of ``correct`` per true class (``None`` for a class with no samples)."""
    c = np.asarray(correct, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(y, minlength=num_classes)
    hits = np.bincount(y, weights=c, minlength=num_classes)
    return [None if n == 0 else float(h / n) for h, n in zip(hits, counts, strict=True)]


@dataclass(frozen=True, kw_only=True)
class Reliability:
    """Reliability-diagram data: per equal-width bin, mean confidence, accuracy and count.

    Empty bins have ``None`` confidence and accuracy. ``ece`` is computed from these bins.
    """

    ece: float
    edges: tuple[float, ...]
    confidence: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]
    count: tuple[int, ...]

    @property
    def bins(self) -> int:
        return len(self.count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ece": self.ece,
            "edges": list(self.edges),
            "confidence": list(self.confidence),
            "accuracy": list(self.accuracy),
            "count": list(self.count),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reliability:
        return cls(
            ece=float(data["ece"]),
            edges=tuple(float(e) for e in data["edges"]),
            confidence=tuple(None if c is None else float(c) for c in data["confidence"]),
            accuracy=tuple(None if a is None else float(a) for a in data["accuracy"]),
            count=tuple(int(n) for n in data["count"]),
        )


def _bin_index(confidence: FloatArray, bins: int) -> npt.NDArray[np.int64]:
    index = np.ceil(confidence * bins).astype(np.int64) - 1
    return np.clip(index, 0, bins - 1)


def reliability(confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = 15) -> Reliability:
    """Bin ``confidence`` (in [0, 1]) against ``correct`` (bool) and compute the ECE."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if conf.ndim != 1 or conf.shape != hit.shape:
        raise EvaluationError(
            f"calibration needs 1-D confidence and correctness of equal length; got "
            f"{conf.shape} and {hit.shape}"
        )
    if conf.size == 0:
        raise EvaluationError("calibration of an empty set of predictions is undefined")
    if bins < 1:
        raise EvaluationError(f"calibration needs at least one bin; got {bins}")
    if not np.all(np.isfinite(conf)) or conf.min() < 0.0 or conf.max() > 1.0:
        raise EvaluationError("confidences must be finite and in [0, 1]")
    index = _bin_index(conf, bins)
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=conf, minlength=bins)
    hit_sum = np.bincount(index, weights=hit, minlength=bins)
    filled = count > 0
    mean_conf = np.divide(conf_sum, count, out=np.zeros(bins), where=filled)
    mean_hit = np.divide(hit_sum, count, out=np.zeros(bins), where=filled)
    ece = float(np.sum(np.abs(mean_hit - mean_conf) * count) / conf.size)
    return Reliability(
        ece=ece,
        edges=tuple(float(e) for e in np.linspace(0.0, 1.0, bins + 1)),
        confidence=tuple(float(c) if f else None for c, f in zip(mean_conf, filled, strict=True)),
        accuracy=tuple(float(a) if f else None for a, f in zip(mean_hit, filled, strict=True)),
        count=tuple(int(n) for n in count),
    )


def expected_calibration_error(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = 15
) -> float:
    """ECE with ``bins`` equal-width bins (see the module docstring)."""
    return reliability(confidence, correct, bins).ece


def reliability_from_logits(logits: Tensor, labels: Tensor, bins: int = 15) -> Reliability:
    """:func:`reliability` of the softmax top-1 confidence of ``logits`` against ``labels``."""
    probs = torch.softmax(logits.detach().double(), dim=1)
    confidence, predicted = probs.max(dim=1)
    correct = predicted == labels.to(predicted.device)
    return reliability(confidence.cpu().numpy(), correct.cpu().numpy(), bins)
