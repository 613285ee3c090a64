"""Calibrated confidence and abstention: say "I don't know" instead of guessing.

Temperature scaling (Guo et al., ICML 2017) divides the logits by one scalar fitted on
validation data (the pipeline stores it in the model artifact as
``spec.extra["temperature"]``); the softmax of the result is a confidence that matches
accuracy on that data. Below ``abstain_below`` the server abstains: the answer is withheld
and the input goes to the review queue, because adversarial and out-of-distribution inputs
concentrate in the low-confidence region.

Gradient story: ``EXACT``. Scaling by a positive constant is differentiable and monotone —
it changes no argmax, so it is no robustness claim by itself; abstention is a threshold on a
differentiable confidence that an adaptive attack can target (high-confidence attacks).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from bastion.defend.base import Gradient, Stage

__all__ = ["TemperatureScaling"]


class TemperatureScaling:
    """``softmax(logits / T)``; abstain where the top probability is below the threshold."""

    name: ClassVar[str] = "calibrate"
    stage: ClassVar[Stage] = Stage.OUTPUT
    gradient: ClassVar[Gradient] = Gradient.EXACT

    def __init__(self, *, temperature: float = 1.0, abstain_below: float = 0.0) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        if not 0.0 <= abstain_below <= 1.0:
            raise ValueError(f"abstain_below must be in [0, 1]; got {abstain_below}")
        self.temperature = float(temperature)
        self.abstain_below = float(abstain_below)

    def probabilities(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits / self.temperature, dim=1)

    def abstain(self, probs: Tensor) -> Tensor:
        return probs.max(dim=1).values < self.abstain_below
