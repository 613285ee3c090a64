"""TRADES' inner maximisation (Zhang et al. 2019): the point of the ε-ball whose prediction
is furthest, in KL divergence, from the prediction on the clean input.

It is an attack in every respect but its loss, which depends on the clean prediction rather
than the label; so it reuses the attack base (eval mode, private seeded generator, budget
and range verified) and the library's numerics, and lives here rather than in the registry
because nothing but TRADES trains or evaluates with it. The input gradient is taken at an
in-range leaf (``_ops.input_gradient``), never through a clamp.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from bastion.attacks.base import ImageAttack, Model, Norm
from bastion.attacks.image._ops import input_gradient, project
from bastion.attacks.params import Interval, Optional, Param

__all__ = ["TradesKL"]

#: TRADES starts from the clean input plus N(0, 0.001²) noise
_INIT_STD = 1e-3


class TradesKL(ImageAttack):
    """L∞ PGD on ``KL(p(x) || p(x'))``, from a tiny Gaussian start (not registered)."""

    name = "trades_kl"
    version = "1.0.0"
    params: ClassVar = {
        **ImageAttack.params,
        "eps": Param(Interval(float, 0, 1, "right"), 8 / 255, "L∞ budget"),
        "steps": Param(Interval(int, 1, None), 10, "gradient steps"),
        "step_size": Param(
            Optional(Interval(float, 0, None, "neither")), None, "None: 2.5 * eps / steps"
        ),
    }

    @property
    def norm(self) -> Norm:
        return Norm.LINF

    @property
    def budget(self) -> float:
        return float(self.eps)

    def cost(self) -> float:
        return float(self.steps) + 1.0 / 3.0

    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        eps = float(self.eps)
        step = 2.5 * eps / self.steps if self.step_size is None else float(self.step_size)
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)

        def kl(logits: Tensor, _y: Tensor) -> Tensor:
            log_q = F.log_softmax(logits, dim=1)
            return F.kl_div(log_q, p_clean, reduction="none").sum(dim=1)

        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = project(x + _INIT_STD * noise, x, eps, Norm.LINF)
        for _ in range(int(self.steps)):
            grad, _ = input_gradient(model, x_adv, y, kl)
            x_adv = project(x_adv + step * grad.sign(), x, eps, Norm.LINF)
        return x_adv
