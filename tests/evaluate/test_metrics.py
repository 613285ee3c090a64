"""Accuracy and calibration on small hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bastion.errors import EvaluationError
from bastion.evaluate import calibration
from bastion.evaluate.metrics import (
    accuracy,
    expected_calibration_error,
    per_class_accuracy,
    reliability,
    reliability_from_logits,
)


def test_ece_of_a_perfectly_calibrated_predictor_is_zero() -> None:
    # 10 predictions at 0.8 with 8 right, 5 at 0.6 with 3 right, 4 at 0.25 with 1 right
    confidence = [0.8] * 10 + [0.6] * 5 + [0.25] * 4
    correct = [True] * 8 + [False] * 2 + [True] * 3 + [False] * 2 + [True] + [False] * 3
    assert expected_calibration_error(confidence, correct, bins=15) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_an_overconfident_predictor_matches_the_hand_computation() -> None:
    # bin of 0.99 (14th): 10 samples, 5 right -> gap 0.49, weight 10/20
    # bin of 0.70 (11th): 10 samples, 4 right -> gap 0.30, weight 10/20
    confidence = [0.99] * 10 + [0.7] * 10
    correct = [True, False] * 5 + [True] * 4 + [False] * 6
    expected = 0.5 * 0.49 + 0.5 * 0.30
    result = reliability(confidence, correct, bins=15)
    assert result.ece == pytest.approx(expected)
    assert result.ece > 0.3
    assert result.count[14] == 10
    assert result.count[10] == 10
    assert sum(result.count) == 20
    assert result.confidence[14] == pytest.approx(0.99)
    assert result.accuracy[14] == pytest.approx(0.5)
    assert result.accuracy[10] == pytest.approx(0.4)
    assert result.confidence[0] is None
    assert result.accuracy[0] is None
    assert len(result.edges) == 16
    assert result.edges[0] == 0.0
    assert result.edges[-1] == 1.0


def test_bins_are_closed_on_the_right() -> None:
    # 1/15 belongs to the first bin, a hair above it to the second; 0 and 1 are kept
    edge = 1 / 15
    result = reliability([0.0, edge, edge + 1e-9, 1.0], [True] * 4, bins=15)
    assert result.count[0] == 2
    assert result.count[1] == 1
    assert result.count[14] == 1


def test_ece_agrees_with_the_temperature_scaling_module() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(500, 10, generator=generator)
    labels = torch.randint(0, 10, (500,), generator=generator)
    ours = reliability_from_logits(logits, labels, bins=15).ece
    theirs = calibration.expected_calibration_error(logits, labels, bins=15)
    assert ours == pytest.approx(theirs, abs=1e-9)
    assert ours > 0.05  # random labels with confident logits: badly calibrated


def test_reliability_from_logits_uses_softmax_confidence() -> None:
    # two-class logits (log 3, 0): softmax confidence exactly 0.75 for class 0
    logits = torch.tensor([[float(np.log(3.0)), 0.0]] * 4)
    labels = torch.tensor([0, 0, 0, 1])
    result = reliability_from_logits(logits, labels, bins=10)
    assert result.ece == pytest.approx(0.0, abs=1e-6)  # float32 log(3)
    assert result.count[7] == 4
    assert result.confidence[7] == pytest.approx(0.75, abs=1e-6)


def test_accuracy_and_per_class_accuracy() -> None:
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    per_class = per_class_accuracy([True, False, True, True], [0, 0, 2, 2], num_classes=4)
    assert per_class == [0.5, None, 1.0, None]


@pytest.mark.parametrize(
    ("confidence", "correct", "message"),
    [
        ([], [], "empty"),
        ([0.5, 1.5], [True, False], r"\[0, 1\]"),
        ([0.5, float("nan")], [True, False], "finite"),
        ([0.5], [True, False], "equal length"),
    ],
)
def test_bad_calibration_inputs_are_refused(
    confidence: list[float], correct: list[bool], message: str
) -> None:
    with pytest.raises(EvaluationError, match=message):
        reliability(confidence, correct)


def test_accuracy_refuses_mismatched_and_empty_inputs() -> None:
    with pytest.raises(EvaluationError, match="shapes differ"):
        accuracy([1, 2], [1])
    with pytest.raises(EvaluationError, match="empty"):
        accuracy([], [])
