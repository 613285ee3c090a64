"""Ensemble disagreement: members trained apart rarely agree on the same wrong answer.

When a model version is an ensemble, the served prediction is the mean of the members'
probabilities, and the fraction of members whose own top class differs from the ensemble's
is a detection score: a transfer attack crafted on one member tends to fool it and not the
others (Tramèr et al., ICLR 2018, use the same diversity for ensemble adversarial training).
The flag threshold is either given or fitted for the target false-positive rate on clean
validation data.

Gradient story: ``EXACT`` for the averaged prediction (attack the mean of the members), and
``DETECTOR`` for the disagreement flag — a hard count, so adaptive attacks should use the
members' margin against the ensemble label as the differentiable surrogate.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from bastion.defend.base import Gradient, Stage

__all__ = ["EnsembleDisagreement"]


class EnsembleDisagreement:
    """Score: fraction of members whose argmax differs from the ensemble's; flag above it."""

    name: ClassVar[str] = "ensemble"
    stage: ClassVar[Stage] = Stage.OUTPUT
    gradient: ClassVar[Gradient] = Gradient.DETECTOR

    def __init__(self, *, max_disagreement: float | None = None) -> None:
        self.threshold = max_disagreement

    @staticmethod
    def combine(member_probs: Tensor) -> Tensor:
        """(M, N, K) member probabilities -> (N, K) ensemble probabilities."""
        return member_probs.mean(dim=0)

    @staticmethod
    def score(member_probs: Tensor) -> Tensor:
        ensemble = member_probs.mean(dim=0).argmax(dim=1)  # N
        votes = member_probs.argmax(dim=2)  # M, N
        return (votes != ensemble[None, :]).float().mean(dim=0)

    def flag(self, scores: Tensor) -> Tensor:
        if self.threshold is None:
            raise RuntimeError("set or fit the disagreement threshold before flagging")
        return scores > self.threshold
