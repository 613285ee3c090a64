"""Temperature scaling (Guo et al. 2017), fitted on clean and adversarial validation data.

Adversarial training leaves a model whose confidence means little: it is often
over-confident on the points an attacker moves and under-confident on clean ones. One
scalar temperature ``T`` (logits / T) changes no prediction, so accuracy and robust accuracy
stay exactly as measured, but it makes the reported probabilities honest. Fitting ``T`` on
the union of clean and adversarial validation logits calibrates for the inputs the threat
model says the model will see. The fit minimises the negative log-likelihood over ``log T``
(so ``T`` stays positive) with L-BFGS; it never touches the test split.

>>> t = fit_temperature(logits, labels)           # doctest: +SKIP
>>> calibrated = TemperatureScaled(model, t)      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from bastion.errors import EvaluationError
from bastion.evaluate.metrics import reliability_from_logits

__all__ = [
    "CalibrationFit",
    "TemperatureScaled",
    "collect_logits",
    "expected_calibration_error",
    "fit_temperature",
    "fit_temperature_on",
    "negative_log_likelihood",
]

_MIN_T, _MAX_T = 0.05, 100.0


def negative_log_likelihood(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> float:
    """Mean cross-entropy of ``logits / temperature``."""
    return float(nn.functional.cross_entropy(logits.double() / temperature, labels))


def expected_calibration_error(
    logits: Tensor, labels: Tensor, temperature: float = 1.0, bins: int = 15
) -> float:
    """ECE of ``softmax(logits / temperature)`` (the evaluation's binning, 15 bins)."""
    if logits.shape[0] == 0:
        raise EvaluationError("ECE of an empty set of predictions is undefined")
    return reliability_from_logits(logits.double() / temperature, labels, bins).ece


def fit_temperature(logits: Tensor, labels: Tensor, *, max_iter: int = 100) -> float:
    """The temperature minimising the NLL of ``logits / T`` on ``labels``."""
    if logits.dim() != 2 or labels.shape != (logits.shape[0],):
        raise EvaluationError(
            f"temperature scaling needs logits (N, C) and labels (N,); got "
            f"{tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    if logits.shape[0] == 0:
        raise EvaluationError("temperature scaling needs at least one validation sample")
    if not torch.isfinite(logits).all():
        raise EvaluationError("temperature scaling got non-finite logits")
    z = logits.detach().double()
    y = labels.detach().long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    temperature = float(log_t.detach().exp())
    if not torch.isfinite(torch.tensor(temperature)):
        raise EvaluationError("temperature scaling diverged")
    return min(max(temperature, _MIN_T), _MAX_T)


class TemperatureScaled(nn.Module):
    """``model`` with its logits divided by a fixed temperature (predictions unchanged)."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        if not temperature > 0:
            raise EvaluationError(f"temperature must be > 0; got {temperature}")
        self.model = model
        self.temperature = float(temperature)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.model(x)
        return out / self.temperature


@torch.no_grad()
def _forward(model: Callable[[Tensor], Tensor], x: Tensor, batch_size: int) -> Tensor:
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def collect_logits(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    attack: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None,
    *,
    batch_size: int = 256,
) -> Tensor:
    """Logits of ``model`` on ``x`` (or on ``attack(model, x, y)`` when given), batched."""
    was_training = model.training
    model.eval()
    try:
        chunks = []
        for i in range(0, x.shape[0], batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            if attack is not None:
                with torch.enable_grad():
                    xb = attack(model, xb, yb)
            chunks.append(_forward(model, xb, batch_size))
        return torch.cat(chunks) if chunks else torch.empty(0)
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class CalibrationFit:
    """A fitted temperature and what it did to the validation data it was fitted on."""

    temperature: float
    samples_clean: int
    samples_adversarial: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    attack: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_temperature_on(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    attack: Any | None = None,
    *,
    batch_size: int = 256,
    bins: int = 15,
) -> CalibrationFit:
    """Fit a temperature on clean validation logits plus, when ``attack`` is given, the
    logits of the same points after the attack."""
    clean = collect_logits(model, x, y, batch_size=batch_size)
    logits, labels = clean, y
    adversarial_count = 0
    if attack is not None:
        adversarial = collect_logits(model, x, y, attack, batch_size=batch_size)
        logits = torch.cat([clean, adversarial])
        labels = torch.cat([y, y])
        adversarial_count = adversarial.shape[0]
    temperature = fit_temperature(logits, labels)
    described = attack.describe() if attack is not None and hasattr(attack, "describe") else None
    return CalibrationFit(
        temperature=temperature,
        samples_clean=int(clean.shape[0]),
        samples_adversarial=adversarial_count,
        nll_before=negative_log_likelihood(logits, labels),
        nll_after=negative_log_likelihood(logits, labels, temperature),
        ece_before=expected_calibration_error(logits, labels, bins=bins),
        ece_after=expected_calibration_error(logits, labels, temperature, bins=bins),
        attack=described,
    )
