"""APGD-DLR — Auto-PGD on the Difference of Logits Ratio loss (Croce & Hein 2020, "Reliable
evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks",
ICML, eq. 6).

Threat model: white-box, untargeted, L∞ or L2 ball of radius ``eps`` around each input,
intersected with [0, 1]. DLR, ``-(z_y − max_{i≠y} z_i) / (z_π1 − z_π3)``, is invariant to
shifting and rescaling the logits, so a model cannot hide behind saturated or huge logits the
way it can against cross-entropy. Needs at least three classes.

Cost: ``(steps + 1) × restarts`` gradient passes per sample at most.

>>> attack = APGDDLR(eps=0.3, steps=100)
>>> x_adv = attack(model, x, y)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from bastion.attacks.image._apgd import APGDBase, AuxLossFn
from bastion.attacks.image._ops import dlr_loss
from bastion.attacks.registry import register

__all__ = ["APGDDLR"]


def _dlr(logits: Tensor, y: Tensor, aux: Tensor) -> Tensor:
    return dlr_loss(logits, y)


@register
class APGDDLR(APGDBase):
    """Auto-PGD on the DLR loss, L∞ or L2, untargeted."""

    name = "apgd_dlr"
    version = "1.0.0"
    min_classes: ClassVar[int] = 3

    def _losses(self, clean_logits: Tensor, y: Tensor) -> list[tuple[AuxLossFn, Tensor]]:
        return [(_dlr, y)]
