"""Gaussian noise — a corruption, not an optimised attack (the noise baseline of Hendrycks &
Dietterich 2019, "Benchmarking neural network robustness to common corruptions and
perturbations", ICLR).

Threat model: an input channel that adds i.i.d. Gaussian noise of standard deviation
``sigma`` to every element; no norm bound (norm ``none``: only [0, 1] is enforced, by
clipping). A model that already falls to random noise needs no adversary; reporting it
beside the attacks separates "fragile" from "attackable". Up to ``trials`` draws per
sample, each only for samples no earlier draw fooled; the first fooling draw is kept,
otherwise the draw with the lowest margin. Uses no gradients.

>>> attack = GaussianNoise(sigma=0.1, trials=10)
>>> x_noisy = attack(model, x, y)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from bastion.attacks.base import FORWARD_COST, ImageAttack, Model, Norm
from bastion.attacks.image._ops import best_of_draws
from bastion.attacks.params import Interval, Param
from bastion.attacks.registry import register

__all__ = ["GaussianNoise"]


@register
class GaussianNoise(ImageAttack):
    """Additive Gaussian noise, clipped to [0, 1]; best of ``trials`` draws."""

    name = "gaussian_noise"
    version = "1.0.0"
    uses_gradients = False
    params: ClassVar = {
        **ImageAttack.params,
        "sigma": Param(Interval(float, 0, None, "neither"), 0.1, "noise standard deviation"),
        "trials": Param(Interval(int, 1, None), 10, "draws per sample; first fooling kept"),
    }

    @property
    def norm(self) -> Norm:
        return Norm.NONE

    def cost(self) -> float:
        return FORWARD_COST * int(self.trials)

    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        sigma = float(self.sigma)

        def draw(clean: Tensor, gen: torch.Generator) -> Tensor:
            noise = torch.randn(clean.shape, generator=gen, device=clean.device, dtype=clean.dtype)
            return (clean + sigma * noise).clamp(0.0, 1.0)

        return best_of_draws(self.name, model, x, y, draw, int(self.trials), generator)
