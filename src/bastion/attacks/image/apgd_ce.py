"""APGD-CE — Auto-PGD on the cross-entropy loss (Croce & Hein 2020, "Reliable evaluation of
adversarial robustness with an ensemble of diverse parameter-free attacks", ICML).

Threat model: white-box, untargeted, L∞ or L2 ball of radius ``eps`` around each input,
intersected with [0, 1]. The first attack of AutoAttack: the step-size schedule, momentum and
checkpoints of :mod:`bastion.attacks.image._apgd` replace PGD's hand-tuned step, so a
robustness number does not depend on a step size someone picked. Cross-entropy is not scale
invariant, which is why ``apgd_dlr``/``apgd_t`` complement it.

Cost: ``(steps + 1) × restarts`` gradient passes per sample at most; samples stop as soon as
they are misclassified.

>>> attack = APGDCE(eps=0.3, norm="linf", steps=100)
>>> x_adv = attack(model, x, y)  # doctest: +SKIP
"""

from __future__ import annotations

from torch import Tensor

from bastion.attacks.image._apgd import APGDBase, AuxLossFn
from bastion.attacks.image._ops import ce_loss
from bastion.attacks.registry import register

__all__ = ["APGDCE"]


def _ce(logits: Tensor, y: Tensor, aux: Tensor) -> Tensor:
    return ce_loss(logits, y)


@register
class APGDCE(APGDBase):
    """Auto-PGD on the cross-entropy loss, L∞ or L2, untargeted."""

    name = "apgd_ce"
    version = "1.0.0"

    def _losses(self, clean_logits: Tensor, y: Tensor) -> list[tuple[AuxLossFn, Tensor]]:
        return [(_ce, y)]
