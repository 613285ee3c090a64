"""PGD — projected gradient descent (Madry et al. 2018) in L∞ or L2, with random start and
restarts.

Each step moves the input along the sign of the gradient (L∞) or the normalised gradient
(L2) of the loss, then projects back onto the ``eps``-ball around the clean input and onto
[0, 1]. Per sample, the first iterate that is misclassified is kept, so a longer run or
more restarts never return a weaker point than a shorter one. Restarts only re-attack the
samples no earlier restart fooled.

Threat model: white-box, untargeted, L∞ or L2 ball of radius ``eps`` intersected with
[0, 1]. Cost: ``steps × restarts`` gradient passes per sample at most.

Since a fooled sample's result is fixed, ``early_exit`` (default) drops it from the batch at
once; the other samples' iterates do not depend on it, so the result is the same and only
the work shrinks (on an undefended model most samples leave within a few steps).
``early_exit=False`` runs every sample for every step, as a plain PGD loop does.

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
    version = "1.1.0"
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
        "early_exit": Param(Boolean(), True, "stop stepping a sample once it is fooled"),
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
        out = x_adv.clone()
        fooled = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        active = torch.arange(x.shape[0], device=x.device)
        x_act, y_act = x, y
        for step_index in range(int(self.steps)):
            check = self.name if step_index == 0 else None
            grad, logits = input_gradient(model, x_adv, y_act, loss_fn, check=check)
            newly = (logits.argmax(dim=1) != y_act) & ~fooled[active]
            if bool(newly.any()):
                out[active[newly]] = x_adv[newly]
                fooled[active[newly]] = True
                if self.early_exit:
                    keep = ~newly
                    active, x_act, y_act = active[keep], x_act[keep], y_act[keep]
                    x_adv, grad = x_adv[keep], grad[keep]
                    if active.numel() == 0:
                        return out, fooled
            direction = grad.sign() if norm is Norm.LINF else l2_normalize(grad)
            x_adv = project(x_adv + step * direction, x_act, eps, norm)
        last = ~fooled[active]
        out[active[last]] = x_adv[last]
        return out, fooled
