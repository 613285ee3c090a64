"""Temperature scaling: it must make an over-confident model honest without changing a
single prediction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bastion.attacks import create
from bastion.errors import EvaluationError
from bastion.evaluate.calibration import (
    TemperatureScaled,
    expected_calibration_error,
    fit_temperature,
    fit_temperature_on,
    negative_log_likelihood,
)


def _calibrated_problem(n: int = 4000, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose softmax is the true label distribution (perfectly calibrated)."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(n, classes, generator=g) * 1.5
    labels = torch.multinomial(torch.softmax(logits, 1), 1, generator=g).squeeze(1)
    return logits, labels


def test_fitted_temperature_undoes_overconfidence_and_lowers_nll_and_ece() -> None:
    logits, labels = _calibrated_problem()
    overconfident = logits * 4.0
    t = fit_temperature(overconfident, labels)
    assert 3.0 < t < 5.0
    assert negative_log_likelihood(overconfident, labels, t) < negative_log_likelihood(
        overconfident, labels
    )
    before = expected_calibration_error(overconfident, labels)
    after = expected_calibration_error(overconfident, labels, t)
    assert after < before / 2


def test_scaled_model_keeps_every_prediction() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(50, 1, 4, 4)
    scaled = TemperatureScaled(model, 2.5)
    with torch.no_grad():
        assert torch.equal(model(x).argmax(1), scaled(x).argmax(1))
        torch.testing.assert_close(scaled(x), model(x) / 2.5)


def test_fit_on_clean_and_adversarial_validation_data() -> None:
    torch.manual_seed(0)
    x = torch.rand(200, 1, 4, 4)
    w = torch.randn(16, 3)
    y = (x.flatten(1) @ w + torch.randn(200, 3)).argmax(1)  # noisy labels: errors to be had
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].weight.copy_(w.T * 20.0)  # right direction, far too confident
        model[1].bias.zero_()
    fit = fit_temperature_on(model, x, y, create("fgsm", eps=0.1))
    assert fit.samples_clean == 200
    assert fit.samples_adversarial == 200
    assert fit.attack is not None
    assert fit.attack["name"] == "fgsm"
    assert fit.temperature > 1.0
    assert fit.nll_after < fit.nll_before
    assert fit.ece_after < fit.ece_before


@pytest.mark.parametrize(
    ("logits", "labels", "message"),
    [
        (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), "at least one"),
        (torch.zeros(4), torch.zeros(4, dtype=torch.long), "logits \\(N, C\\)"),
        (torch.full((2, 3), float("nan")), torch.zeros(2, dtype=torch.long), "non-finite"),
    ],
)
def test_bad_inputs_are_clear_errors(
    logits: torch.Tensor, labels: torch.Tensor, message: str
) -> None:
    with pytest.raises(EvaluationError, match=message):
        fit_temperature(logits, labels)
