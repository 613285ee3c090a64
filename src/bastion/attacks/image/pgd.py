"""PGD — projected gradient descent (Madry et al. 2018) in L∞ or L2, with random start and
restarts.

Each step moves the input along the sign of the gradient (L∞) or the normalised gradient
(L2) of the loss, then projects back onto the ``eps``-ball around the clean input and onto
[0, 1]. Per sample, the first iterate that is misclassified is kept, so a longer run or
more restarts never return a weaker point than a shorter one. Restarts only re-attack the
samples no earlier restart fooled.

Default step size is ``2.5 * eps / steps`` (Madry et al.).

>>> attack = PGD(eps=0.3, norm="linf", steps=40)
>>> x_adv = attack(model, x, y)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from bastion.attacks.base import ImageAttack, Model, Norm
from bastion.attacks.image._ops import (
    LossFn,
    ce_loss,
    input_gradient,
    l2_normalize,
    margin_loss,
    project,
    random_start,
)
from bastion.attacks.params import Boolean, Interval, OneOf, Optional, Param
from bastion.attacks.registry import register
from bastion.errors import ParameterError

__all__ = ["PGD"]

_LOSSES: dict[str, LossFn] = {"ce": ce_loss, "margin": margin_loss}


@register
class PGD(ImageAttack):
    """Projected gradient descent, L∞ or L2, random start, restarts."""

    name = "pgd"
    version = "1.0.0"
    params: ClassVar = {
        **ImageAttack.params,
        "eps": Param(Interval(float, 0, None, "neither"), 8 / 255, "budget in the chosen norm"),
        "norm": Param(OneOf(("linf", "l2")), "linf", "norm of the budget"),
        "steps": Param(Interval(int, 1, None), 10, "gradient steps per restart"),
        "step_size": Param(
            Optional(Interval(float, 0, None, "neither")), None, "None: 2.5 * eps / steps"
        ),
        "random_start": Param(Boolean(), True, "start from a uniform point of the ball"),
        "restarts": Param(Interval(int, 1, None), 1, "independent runs; best kept"),
        "loss": Param(OneOf(("ce", "margin")), "ce", "loss to ascend"),
    }

    def _check(self) -> None:
        if self.norm is Norm.LINF and self.eps > 1:
            raise ParameterError(self.name, "eps", "a float in (0, 1] for norm 'linf'", self.eps)

    @property
    def norm(self) -> Norm:
        return Norm(self._values["norm"])

    @property
    def budget(self) -> float:
        return float(self.eps)

    def cost(self) -> float:
        return float(self.steps * self.restarts)

    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        best = x.clone()
        todo = torch.arange(x.shape[0], device=x.device)
        for restart in range(int(self.restarts)):
            adv, fooled = self._run(model, x[todo], y[todo], generator)
            best[todo] = adv
            if restart + 1 < self.restarts:
                with torch.no_grad():
                    still = model(adv).argmax(dim=1) == y[todo]
                todo = todo[still & ~fooled]
                if todo.numel() == 0:
                    break
        return best

    def _run(
        self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """One restart: the final iterate, replaced by the first fooling iterate per sample."""
        eps, norm = float(self.eps), self.norm
        step = 2.5 * eps / self.steps if self.step_size is None else float(self.step_size)
        loss_fn = _LOSSES[self.loss]
        x_adv = random_start(x, eps, norm, generator) if self.random_start else x.clone()
        kept = x_adv.clone()
        fooled = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for step_index in range(int(self.steps)):
            check = self.name if step_index == 0 else None
            grad, logits = input_gradient(model, x_adv, y, loss_fn, check=check)
            newly = (logits.argmax(dim=1) != y) & ~fooled
            if newly.any():
                kept[newly] = x_adv[newly]
                fooled |= newly
            direction = grad.sign() if norm is Norm.LINF else l2_normalize(grad)
            x_adv = project(x_adv + step * direction, x, eps, norm)
        return torch.where(_expand(fooled, x), kept, x_adv), fooled


def _expand(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))
