"""Random occlusion — square patches over the image (the occlusion corruption of Zeiler &
Fergus 2014, "Visualizing and understanding convolutional networks", used at random
positions as in Cutout, DeVries & Taylor 2017).

Threat model: an attacker (or a dirty lens, a sticker) may overwrite one ``size``×``size``
square of pixels anywhere in the image with a constant ``value`` or with uniform noise; no
gradients, no knowledge of the model beyond its prediction. The budget is L0: at most
``size² × channels`` input elements change, which the base class verifies. Up to ``trials``
random positions per sample, each only for samples no earlier patch fooled; the first fooling
patch is kept, otherwise the one with the lowest margin.

>>> attack = Occlusion(size=4, trials=20, fill="constant", value=0.0)
>>> x_occluded = attack(model, x, y)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from bastion.attacks.base import FORWARD_COST, ImageAttack, Model, Norm
from bastion.attacks.image._ops import best_of_draws
from bastion.attacks.params import Interval, OneOf, Param
from bastion.attacks.registry import register
from bastion.errors import AttackError

__all__ = ["Occlusion"]


@register
class Occlusion(ImageAttack):
    """One random square patch per image, constant or noise; best of ``trials`` positions."""

    name = "occlusion"
    version = "1.0.0"
    uses_gradients = False
    params: ClassVar = {
        **ImageAttack.params,
        "size": Param(Interval(int, 1, None), 4, "side of the square patch in pixels"),
        "trials": Param(Interval(int, 1, None), 10, "positions per sample; first fooling kept"),
        "fill": Param(OneOf(("constant", "noise")), "constant", "what the patch holds"),
        "value": Param(Interval(float, 0, 1), 0.5, "the constant for fill='constant'"),
    }

    @property
    def norm(self) -> Norm:
        return Norm.L0

    @property
    def budget(self) -> float:
        """Patch area in pixels; in input elements the budget is this × channels."""
        return float(self.size * self.size)

    def budget_for(self, x: Tensor) -> float:
        return self.budget * (x.shape[1] if x.dim() == 4 else 1)

    def cost(self) -> float:
        return FORWARD_COST * int(self.trials)

    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        size = int(self.size)
        if x.dim() != 4:
            raise AttackError(f"{self.name} needs (N, C, H, W) images; got {tuple(x.shape)}")
        if size > x.shape[2] or size > x.shape[3]:
            raise AttackError(
                f"{self.name}: patch size {size} does not fit {x.shape[2]}×{x.shape[3]} images"
            )
        return best_of_draws(self.name, model, x, y, self._draw, int(self.trials), generator)

    def _draw(self, clean: Tensor, generator: torch.Generator) -> Tensor:
        size = int(self.size)
        n, _, h, w = clean.shape
        device = clean.device
        top = torch.randint(0, h - size + 1, (n,), generator=generator, device=device)
        left = torch.randint(0, w - size + 1, (n,), generator=generator, device=device)
        rows = torch.arange(h, device=device)
        cols = torch.arange(w, device=device)
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)
        patch = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]
        if self.fill == "noise":
            filler = torch.rand(clean.shape, generator=generator, device=device, dtype=clean.dtype)
        else:
            filler = torch.full_like(clean, float(self.value))
        return torch.where(patch, filler, clean)
