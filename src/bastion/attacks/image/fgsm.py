"""FGSM — the fast gradient sign method (Goodfellow et al. 2015), optionally from a random
start (Wong et al. 2020, "Fast is better than free").

Threat model: L∞ ball of radius ``eps``. One gradient step of size ``step_size`` (default
``eps``; Wong et al. use 1.25·eps with a random start) in the sign of the input gradient of
the cross-entropy, projected back to the ball and to [0, 1].

>>> attack = FGSM(eps=0.1)
>>> x_adv = attack(model, x, y)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from bastion.attacks.base import ImageAttack, Model, Norm
from bastion.attacks.image._ops import ce_loss, input_gradient, project, random_start
from bastion.attacks.params import Boolean, Interval, Optional, Param
from bastion.attacks.registry import register

__all__ = ["FGSM"]


@register
class FGSM(ImageAttack):
    """Fast gradient sign method, L∞, optional random start."""

    name = "fgsm"
    version = "1.0.0"
    params: ClassVar = {
        **ImageAttack.params,
        "eps": Param(Interval(float, 0, 1, "right"), 8 / 255, "L∞ budget"),
        "step_size": Param(
            Optional(Interval(float, 0, None, "neither")), None, "step; None means eps"
        ),
        "random_start": Param(Boolean(), False, "start from a uniform point of the ball"),
    }

    @property
    def norm(self) -> Norm:
        return Norm.LINF

    @property
    def budget(self) -> float:
        return float(self.eps)

    def cost(self) -> float:
        return 1.0

    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        eps = float(self.eps)
        start = random_start(x, eps, Norm.LINF, generator) if self.random_start else x
        grad, _ = input_gradient(model, start, y, ce_loss, check=self.name)
        step = eps if self.step_size is None else float(self.step_size)
        return project(start + step * grad.sign(), x, eps, Norm.LINF)
