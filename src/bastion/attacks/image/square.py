"""Square attack, L∞ (Andriushchenko, Croce, Flammarion & Hein 2020, "Square Attack: a
query-efficient black-box adversarial attack via random search", ECCV, Algorithm 1).

Threat model: black-box, score-based: the attacker sees the model's logits, never its
gradients, and may query it ``n_queries`` times per sample; L∞ ball of radius ``eps``
intersected with [0, 1]. Because it needs no gradients it sees through gradient masking
(shattered, vanishing or obfuscated gradients), which is why AutoAttack ends with it and
why the evaluation flags a model on which it beats the gradient attacks.

Algorithm: start from vertical stripes (each column of each channel shifted by ±eps), then
repeatedly propose a random ``s×s`` square, set to ±eps per channel, and keep the proposal
when it lowers the margin loss ``z_y − max_{i≠y} z_i``. The side ``s`` follows the paper's
schedule of the fraction ``p`` of pixels changed: ``p_init`` halved after iterations 10, 50,
200, 500, 1000, 2000, 4000, 6000 and 8000, counted on a budget of 10 000 and rescaled to
``n_queries``. A proposal that would not change the current point is redrawn, as in the
reference code. Only samples not yet misclassified are queried; the whole attack runs under
``torch.no_grad`` so it works on models that cannot be differentiated.

Default ``p_init = 0.8`` is AutoAttack's choice for L∞ (the paper's ImageNet default is
0.05); with ``n_queries = 5000`` this is AutoAttack's Square.

>>> attack = Square(eps=0.3, n_queries=5000)
>>> x_adv = attack(model, x, y)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from bastion.attacks.base import FORWARD_COST, ImageAttack, Model, Norm
from bastion.attacks.image._ops import BestKeeper, check_logits, margin
from bastion.attacks.params import Interval, Param
from bastion.attacks.registry import register
from bastion.errors import AttackError

__all__ = ["Square", "p_schedule"]

#: iterations (of 10 000) after which the paper halves p
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_REDRAWS = 100


def p_schedule(p_init: float, iteration: int, n_queries: int) -> float:
    """Fraction of pixels a proposal changes at ``iteration`` of a ``n_queries`` budget."""
    scaled = int(iteration / n_queries * 10000)
    halvings = sum(1 for h in _HALVINGS if scaled > h)
    return float(p_init) / float(2**halvings)


@register
class Square(ImageAttack):
    """Square attack, L∞, score-based random search with no gradients."""

    name = "square"
    version = "1.0.0"
    uses_gradients = False
    params: ClassVar = {
        **ImageAttack.params,
        "eps": Param(Interval(float, 0, 1, "right"), 8 / 255, "L∞ budget"),
        "n_queries": Param(Interval(int, 1, None), 5000, "model queries per sample and restart"),
        "p_init": Param(Interval(float, 0, 1, "right"), 0.8, "initial fraction of pixels"),
        "restarts": Param(Interval(int, 1, None), 1, "independent runs on unfooled samples"),
    }

    @property
    def norm(self) -> Norm:
        return Norm.LINF

    @property
    def budget(self) -> float:
        return float(self.eps)

    def cost(self) -> float:
        return FORWARD_COST * (1 + int(self.n_queries) * int(self.restarts))

    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        if x.dim() != 4 or min(x.shape[2], x.shape[3]) < 2:
            raise AttackError(
                f"{self.name} needs (N, C, H, W) images with H, W >= 2; got {tuple(x.shape)}"
            )
        with torch.no_grad():
            logits = model(x)
            check_logits(self.name, logits, y)
            keeper = BestKeeper(x)
            everyone = torch.arange(x.shape[0], device=x.device)
            keeper.offer(everyone, x, logits, y)
            for _ in range(int(self.restarts)):
                todo = everyone[~keeper.fooled]
                if todo.numel() == 0:
                    break
                self._run(model, x[todo], y[todo], todo, keeper, generator)
        return keeper.x

    def _run(
        self,
        model: Model,
        x: Tensor,
        y: Tensor,
        index: Tensor,
        keeper: BestKeeper,
        generator: torch.Generator,
    ) -> None:
        eps, n_queries = float(self.eps), int(self.n_queries)
        n, c, h, w = x.shape
        signs = _signs((n, c, 1, w), generator, x)
        best = (x + eps * signs).clamp(0.0, 1.0)
        logits = model(best)
        fooled = keeper.offer(index, best, logits, y)
        loss = margin(logits, y)
        live = ~fooled
        x, y, index, best, loss = x[live], y[live], index[live], best[live], loss[live]
        for i in range(n_queries - 1):
            if x.shape[0] == 0:
                return
            p = p_schedule(float(self.p_init), i, n_queries)
            side = min(max(round(math.sqrt(p * h * w)), 1), min(h, w) - 1)
            proposal = self._propose(x, best, side, generator)
            logits = model(proposal)
            fooled = keeper.offer(index, proposal, logits, y)
            new_loss = margin(logits, y)
            better = new_loss < loss
            best = torch.where(better.view(-1, 1, 1, 1), proposal, best)
            loss = torch.where(better, new_loss, loss)
            if bool(fooled.any()):
                live = ~fooled
                x, y, index, best, loss = x[live], y[live], index[live], best[live], loss[live]

    def _propose(self, x: Tensor, best: Tensor, side: int, generator: torch.Generator) -> Tensor:
        """``best`` with one random ``side``×``side`` window per sample set to ±eps per
        channel; windows that would leave the point unchanged are redrawn."""
        eps = float(self.eps)
        n, c, h, w = x.shape
        top = torch.randint(0, h - side + 1, (n,), generator=generator, device=x.device)
        left = torch.randint(0, w - side + 1, (n,), generator=generator, device=x.device)
        rows = torch.arange(h, device=x.device)
        cols = torch.arange(w, device=x.device)
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
        window = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (n, 1, h, w)
        signs = _signs((n, c, 1, 1), generator, x)
        proposal = torch.where(window, (x + eps * signs).clamp(0.0, 1.0), best)
        for _ in range(_REDRAWS):
            same = (proposal - best).abs().flatten(1).amax(dim=1) < 1e-7
            if not bool(same.any()):
                break
            signs = _signs((n, c, 1, 1), generator, x)
            fresh = torch.where(window, (x + eps * signs).clamp(0.0, 1.0), best)
            proposal = torch.where(same.view(-1, 1, 1, 1), fresh, proposal)
        return proposal


def _signs(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
    return (2 * bits - 1).to(like.dtype)
