"""The APGD core shared by ``apgd_ce``, ``apgd_dlr`` and ``apgd_t`` (Croce & Hein 2020,
"Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
attacks", ICML, Algorithm 1).

Fixed-step PGD is only as good as its step size; APGD removes that knob. It starts with step
``2·eps``, adds momentum (α = 0.75) and, at checkpoints ``w_j = ⌈p_j·N⌉`` with
``p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)``, halves a sample's
step and restarts it from the best point found so far when

1. fewer than ``ρ·(w_j − w_{j−1})`` of the steps since the last checkpoint raised the loss
   (ρ = 0.75), or
2. neither its step size nor its best loss changed since the last checkpoint.

Both conditions are taken literally from the paper (AutoAttack's code skips condition 2 at
the first checkpoint). After a restart the momentum term starts again from zero.

Differences from AutoAttack's code that only save work: samples drop out of the batch as
soon as one visited point is misclassified (their state is independent of the others', so
the rest are unaffected), and the last iterate is evaluated without a backward pass. Every
evaluated point is offered to a :class:`~bastion.attacks.image._ops.BestKeeper`, so the
result is never weaker than any point the attack visited.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from bastion.attacks.base import FORWARD_COST, ImageAttack, Model, Norm
from bastion.attacks.image._ops import (
    BestKeeper,
    check_logits,
    l2_normalize,
    project,
    random_start,
)
from bastion.attacks.params import Boolean, Interval, OneOf, Param
from bastion.errors import ParameterError

__all__ = ["APGDBase", "AuxLossFn", "apgd_run", "checkpoints"]

#: per-sample loss from (logits, labels, aux) -> (N,); ``aux`` is a per-sample tensor that
#: travels with the batch (the target class for APGD-T); larger = more adversarial
AuxLossFn = Callable[[Tensor, Tensor, Tensor], Tensor]

_MOMENTUM = 0.75
_INITIAL_STEP = 2.0  # × eps, for L∞ and L2


def checkpoints(steps: int) -> list[int]:
    """The iterations ``w_j = ⌈p_j·steps⌉`` (j ≥ 1) at which APGD may halve its step."""
    p_prev, p = 0.0, 0.22
    marks: list[int] = []
    while p <= 1.0:
        mark = math.ceil(round(p * steps, 9))
        if mark >= 1 and (not marks or mark > marks[-1]):
            marks.append(mark)
        p_prev, p = p, p + max(p - p_prev - 0.03, 0.06)
    return marks


def _logits(model: Model, x: Tensor) -> Tensor:
    """Logits only: the last iterate needs no gradient."""
    with torch.no_grad():
        logits: Tensor = model(x)
    return logits


def _value_and_grad(
    model: Model, x: Tensor, y: Tensor, aux: Tensor, loss_fn: AuxLossFn
) -> tuple[Tensor, Tensor, Tensor]:
    leaf = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(leaf)
        loss = loss_fn(logits, y, aux)
        (grad,) = torch.autograd.grad(loss.sum(), leaf)
    return loss.detach(), logits.detach(), grad


def _rows(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


def apgd_run(
    model: Model,
    x: Tensor,
    y: Tensor,
    aux: Tensor,
    *,
    index: Tensor,
    keeper: BestKeeper,
    loss_fn: AuxLossFn,
    eps: float,
    norm: Norm,
    steps: int,
    rho: float,
    start_random: bool,
    generator: torch.Generator,
) -> None:
    """One APGD run on the sub-batch ``x`` (rows ``index`` of the batch ``keeper`` tracks).

    Results go to ``keeper``; nothing is returned.
    """
    marks = set(checkpoints(steps))
    x_adv = random_start(x, eps, norm, generator) if start_random else x.clone()
    loss, logits, grad = _value_and_grad(model, x_adv, y, aux, loss_fn)
    fooled = keeper.offer(index, x_adv, logits, y)
    n = x.shape[0]
    st: dict[str, Tensor] = {
        "x": x,
        "y": y,
        "aux": aux,
        "index": index,
        "x_adv": x_adv,
        "x_prev": x_adv.clone(),
        "grad": grad,
        "step": torch.full((n,), _INITIAL_STEP * eps, dtype=x.dtype, device=x.device),
        "x_max": x_adv.clone(),
        "g_max": grad.clone(),
        "f_max": loss.clone(),
        "f_prev": loss.clone(),
        "f_max_last": loss.clone(),
        "reduced_last": torch.zeros(n, dtype=torch.bool, device=x.device),
        "increases": torch.zeros(n, dtype=torch.int64, device=x.device),
    }
    if bool(fooled.any()):
        st = {k: v[~fooled] for k, v in st.items()}
    last_mark = 0
    for k in range(steps):
        if st["x"].shape[0] == 0:
            return
        x_adv, x_prev, x0 = st["x_adv"], st["x_prev"], st["x"]
        with torch.no_grad():
            direction = st["grad"].sign() if norm is Norm.LINF else l2_normalize(st["grad"])
            z = project(x_adv + _rows(st["step"], x_adv) * direction, x0, eps, norm)
            if k == 0:
                x_new = z
            else:
                moved = x_adv + _MOMENTUM * (z - x_adv) + (1.0 - _MOMENTUM) * (x_adv - x_prev)
                x_new = project(moved, x0, eps, norm)
        if k == steps - 1:
            logits = _logits(model, x_new)
            keeper.offer(st["index"], x_new, logits, st["y"])
            return
        loss, logits, grad = _value_and_grad(model, x_new, st["y"], st["aux"], loss_fn)
        fooled = keeper.offer(st["index"], x_new, logits, st["y"])
        st["increases"] += (loss > st["f_prev"]).to(torch.int64)
        improved = loss > st["f_max"]
        st["x_max"][improved] = x_new[improved]
        st["g_max"][improved] = grad[improved]
        st["f_max"] = torch.where(improved, loss, st["f_max"])
        st["x_prev"], st["x_adv"], st["grad"], st["f_prev"] = x_adv, x_new, grad, loss
        if k + 1 in marks:
            span = k + 1 - last_mark
            oscillating = st["increases"].to(x.dtype) < rho * span
            stalled = ~st["reduced_last"] & (st["f_max"] <= st["f_max_last"])
            halve = oscillating | stalled
            st["step"] = torch.where(halve, st["step"] / 2.0, st["step"])
            for key, best in (("x_adv", "x_max"), ("x_prev", "x_max"), ("grad", "g_max")):
                st[key] = torch.where(_rows(halve, st[key]), st[best], st[key])
            st["f_prev"] = torch.where(halve, st["f_max"], st["f_prev"])
            st["reduced_last"] = halve
            st["f_max_last"] = st["f_max"].clone()
            st["increases"] = torch.zeros_like(st["increases"])
            last_mark = k + 1
        if bool(fooled.any()):
            st = {key: v[~fooled] for key, v in st.items()}


class APGDBase(ImageAttack):
    """Parameters, budget, cost and the restart loop shared by the APGD attacks; a subclass
    names itself and says which losses (and targets) to run."""

    params: ClassVar = {
        **ImageAttack.params,
        "eps": Param(Interval(float, 0, None, "neither"), 8 / 255, "budget in the chosen norm"),
        "norm": Param(OneOf(("linf", "l2")), "linf", "norm of the budget"),
        "steps": Param(Interval(int, 1, None), 100, "iterations per run (N_iter)"),
        "restarts": Param(Interval(int, 1, None), 1, "runs from random starts; best kept"),
        "rho": Param(
            Interval(float, 0, 1, "neither"), 0.75, "success fraction below which to halve"
        ),
        "random_start": Param(Boolean(), True, "start from a uniform point of the ball"),
    }
    #: fewest classes the loss is defined for
    min_classes: ClassVar[int] = 2

    def _check(self) -> None:
        if self.norm is Norm.LINF and self.eps > 1:
            raise ParameterError(self.name, "eps", "a float in (0, 1] for norm 'linf'", self.eps)

    @property
    def norm(self) -> Norm:
        return Norm(self._values["norm"])

    @property
    def budget(self) -> float:
        return float(self.eps)

    def runs(self) -> int:
        """APGD runs per sample (restarts × targets)."""
        return int(self.restarts)

    def cost(self) -> float:
        return FORWARD_COST + (int(self.steps) + 1) * self.runs()

    @abstractmethod
    def _losses(self, clean_logits: Tensor, y: Tensor) -> list[tuple[AuxLossFn, Tensor]]:
        """The (loss, aux) pairs to run in order, each ``restarts`` times."""

    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        with torch.no_grad():
            logits = model(x)
        check_logits(self.name, logits, y, min_classes=self.min_classes)
        keeper = BestKeeper(x)
        everyone = torch.arange(x.shape[0], device=x.device)
        keeper.offer(everyone, x, logits, y)
        options: dict[str, Any] = {
            "eps": float(self.eps),
            "norm": self.norm,
            "steps": int(self.steps),
            "rho": float(self.rho),
            "start_random": bool(self.random_start),
            "generator": generator,
            "keeper": keeper,
        }
        for loss_fn, aux in self._losses(logits, y):
            for _ in range(int(self.restarts)):
                todo = everyone[~keeper.fooled]
                if todo.numel() == 0:
                    return keeper.x
                apgd_run(model, x[todo], y[todo], aux[todo], index=todo, loss_fn=loss_fn, **options)
        return keeper.x
