"""APGD-T — targeted Auto-PGD on the targeted DLR loss over the most likely other classes
(Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML, eq. 7; the APGD-T of AutoAttack).

Threat model: white-box, L∞ or L2 ball of radius ``eps`` around each input, intersected with
[0, 1]. Success is still any misclassification; the targets are only a better search: for
each of the ``n_target_classes`` classes ranked highest on the clean input after the true
one, APGD maximises ``-(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2)``, on the samples that no
earlier target fooled. Needs at least four classes; with K classes at most K − 1 targets run.

Cost: ``(steps + 1) × restarts × n_target_classes`` gradient passes per sample at most.

>>> attack = APGDT(eps=0.3, steps=100, n_target_classes=9)
>>> x_adv = attack(model, x, y)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from bastion.attacks.image._apgd import APGDBase, AuxLossFn
from bastion.attacks.image._ops import dlr_targeted_loss
from bastion.attacks.params import Interval, Param
from bastion.attacks.registry import register

__all__ = ["APGDT"]


@register
class APGDT(APGDBase):
    """Targeted Auto-PGD on the targeted DLR loss over the top other classes."""

    name = "apgd_t"
    version = "1.0.0"
    min_classes: ClassVar[int] = 4
    params: ClassVar = {
        **APGDBase.params,
        "n_target_classes": Param(
            Interval(int, 1, None), 9, "targets: the top classes other than the true one"
        ),
    }

    def runs(self) -> int:
        return int(self.restarts) * int(self.n_target_classes)

    def _losses(self, clean_logits: Tensor, y: Tensor) -> list[tuple[AuxLossFn, Tensor]]:
        ranked = clean_logits.argsort(dim=1, descending=True)
        # Only correctly classified samples are attacked, so rank 0 is the true class.
        count = min(int(self.n_target_classes), clean_logits.shape[1] - 1)
        return [(dlr_targeted_loss, ranked[:, rank]) for rank in range(1, count + 1)]
