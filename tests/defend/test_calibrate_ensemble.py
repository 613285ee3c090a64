"""Temperature scaling and abstention; ensemble averaging and disagreement."""

from __future__ import annotations

import copy
from typing import cast

import pytest
import torch

from bastion.config.serve import CalibrateLayer, EnsembleLayer, EnsembleOptions, ServeConfig
from bastion.data import Dataset
from bastion.defend.base import Gradient
from bastion.defend.calibrate import TemperatureScaling
from bastion.defend.ensemble import EnsembleDisagreement
from bastion.defend.stack import Guard


def test_temperature_scaling_and_abstention() -> None:
    layer = TemperatureScaling(temperature=2.0, abstain_below=0.6)
    logits = torch.tensor([[4.0, 0.0], [0.4, 0.0]])
    probs = layer.probabilities(logits)
    torch.testing.assert_close(probs, torch.softmax(logits / 2.0, dim=1))
    assert layer.abstain(probs).tolist() == [False, True]
    assert layer.gradient is Gradient.EXACT
    with pytest.raises(ValueError, match="temperature"):
        TemperatureScaling(temperature=0.0)
    with pytest.raises(ValueError, match="abstain_below"):
        TemperatureScaling(abstain_below=1.5)


def test_ensemble_score_counts_dissenting_members() -> None:
    member_probs = torch.tensor(
        [
            [[0.9, 0.1], [0.2, 0.8]],
            [[0.8, 0.2], [0.7, 0.3]],
            [[0.6, 0.4], [0.6, 0.4]],
        ]
    )
    torch.testing.assert_close(EnsembleDisagreement.combine(member_probs), member_probs.mean(dim=0))
    scores = EnsembleDisagreement.score(member_probs)
    torch.testing.assert_close(scores, torch.tensor([0.0, 1 / 3]))
    assert EnsembleDisagreement(max_disagreement=0.2).flag(scores).tolist() == [False, True]


def test_guard_abstains_below_threshold_with_the_artifact_temperature(
    digits: Dataset, digits_cnn: torch.nn.Module
) -> None:
    x, _ = digits.test.tensors()
    config = ServeConfig(layers=[CalibrateLayer(name="calibrate")], abstain_below=0.9)
    guard = Guard.from_config(config, members=[digits_cnn], temperature=3.0)
    verdicts = guard(x[:50])
    with torch.no_grad():
        expected = torch.softmax(digits_cnn(x[:50]) / 3.0, dim=1)
    for verdict, probs in zip(verdicts, expected, strict=True):
        assert verdict.probabilities == pytest.approx(probs.tolist(), abs=1e-6)
        assert verdict.abstained == (probs.max().item() < 0.9)
        assert ("calibrate.low_confidence" in verdict.reasons) == verdict.abstained
    assert any(v.abstained for v in verdicts)
    assert not all(v.abstained for v in verdicts)


def test_guard_flags_ensemble_disagreement_and_fits_its_threshold(
    digits: Dataset, digits_cnn: torch.nn.Module
) -> None:
    x_train, y_train = digits.train.tensors()
    x_val, _ = digits.val.tensors()
    x_test, _ = digits.test.tensors()
    broken = copy.deepcopy(digits_cnn)
    with torch.no_grad():
        head = cast(torch.nn.Linear, broken.head)
        head.bias.add_(torch.linspace(0, 50, head.bias.numel()))  # always says "9"
    config = ServeConfig(layers=[EnsembleLayer(name="ensemble")], detector_target_fpr=0.05)
    agreeing = Guard.from_config(config, members=[digits_cnn, copy.deepcopy(digits_cnn)])
    agreeing.fit(x_train=x_train, y_train=y_train, x_val=x_val, num_classes=10, target_fpr=0.05)
    assert not any(v.flagged for v in agreeing(x_test[:100]))
    fixed = ServeConfig(
        layers=[EnsembleLayer(name="ensemble", options=EnsembleOptions(max_disagreement=0.0))]
    )
    split = Guard.from_config(fixed, members=[digits_cnn, broken])
    verdicts = split(x_test[:100])
    with torch.no_grad():
        differ = (digits_cnn(x_test[:100]).argmax(1) != broken(x_test[:100]).argmax(1)).tolist()
    assert [v.flagged for v in verdicts] == differ
    assert all("ensemble.disagreement" in v.reasons for v in verdicts if v.flagged)


def test_differentiable_logits_follow_the_served_prediction(
    digits: Dataset, digits_cnn: torch.nn.Module
) -> None:
    x, _ = digits.test.tensors()
    config = ServeConfig(layers=[CalibrateLayer(name="calibrate")], abstain_below=0.0)
    guard = Guard.from_config(config, members=[digits_cnn], temperature=2.0)
    x = x[:8].clone().requires_grad_(True)
    logits = guard.differentiable_logits(x)
    served = [v.probabilities for v in guard(x.detach())]
    torch.testing.assert_close(logits.exp().detach(), torch.tensor(served), rtol=0, atol=1e-5)
    logits[:, 0].sum().backward()  # type: ignore[no-untyped-call]
    assert x.grad is not None
    assert x.grad.abs().sum() > 0
