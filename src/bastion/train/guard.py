"""The epoch's held-out check, and the catastrophic-overfitting guard of fast FGSM-RS.

Single-step adversarial training can *collapse* (Wong et al. 2020, Andriushchenko &
Flammarion 2020): within an epoch the model learns to defeat its own FGSM step while PGD
accuracy falls to near zero. The collapse is visible on a held-out batch: PGD accuracy
drops far below its best so far, or the training attack's accuracy pulls far ahead of PGD's.
The guard reads the check after every epoch; on collapse the loop rolls back to the last
good checkpoint and continues one rung safer on the ladder of :mod:`bastion.train.perturb`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from bastion import attacks
from bastion.attacks.base import ImageAttack
from bastion.config.recipe import GuardConfig

__all__ = ["Check", "GuardState", "accuracy", "assess", "run_check"]

_EVAL_BATCH = 512


@dataclass(frozen=True)
class Check:
    """Accuracies on the held-out batch at the end of an epoch."""

    clean: float
    pgd: float | None = None
    attack: float | None = None  # the training attack itself (FGSM-RS only)

    def as_record(self) -> dict[str, float | None]:
        return {"val_clean_acc": self.clean, "val_pgd_acc": self.pgd, "val_attack_acc": self.attack}


@dataclass
class GuardState:
    """What the guard remembers across epochs (saved in every checkpoint)."""

    best_pgd: float | None = None
    rollbacks: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"best_pgd": self.best_pgd, "rollbacks": self.rollbacks, "events": self.events}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuardState:
        return cls(
            best_pgd=data["best_pgd"], rollbacks=int(data["rollbacks"]), events=list(data["events"])
        )


def accuracy(model: nn.Module, x: Tensor, y: Tensor, attack: ImageAttack | None = None) -> float:
    """Accuracy of ``model`` (in eval mode) on ``x``, or on ``attack``'s version of it."""
    if x.shape[0] == 0:
        return float("nan")
    was_training = model.training
    correct = 0
    try:
        for start in range(0, x.shape[0], _EVAL_BATCH):
            xb, yb = x[start : start + _EVAL_BATCH], y[start : start + _EVAL_BATCH]
            if attack is not None:
                xb = attack(model, xb, yb)
            model.eval()
            with torch.no_grad():
                correct += int((model(xb).argmax(dim=1) == yb).sum())
    finally:
        model.train(was_training)
    return correct / x.shape[0]


def run_check(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float | None,
    steps: int,
    seed: int,
    training_attack: ImageAttack | None = None,
) -> Check:
    """Clean accuracy, PGD accuracy at ``eps`` (if given) and the training attack's."""
    clean = accuracy(model, x, y)
    if eps is None:
        return Check(clean=clean)
    pgd = attacks.create("pgd", eps=eps, steps=steps, random_start=True, seed=seed)
    if not isinstance(pgd, ImageAttack):  # pragma: no cover - pgd is an image attack
        raise TypeError("pgd is not an image attack")
    pgd_acc = accuracy(model, x, y, pgd)
    attack_acc = accuracy(model, x, y, training_attack) if training_attack is not None else None
    return Check(clean=clean, pgd=pgd_acc, attack=attack_acc)


def assess(config: GuardConfig, state: GuardState, check: Check) -> str | None:
    """Why the epoch collapsed, or ``None`` if it looks healthy."""
    if check.pgd is None:
        return None
    best = state.best_pgd
    if best is None:
        return None
    if best - check.pgd > config.drop:
        return (
            f"PGD accuracy on the held-out batch fell from {best:.3f} to {check.pgd:.3f} "
            f"(more than {config.drop})"
        )
    attack = check.attack
    if (
        attack is not None
        and check.pgd <= config.fraction * best
        and attack - check.pgd >= config.gap
    ):
        return (
            f"PGD accuracy on the held-out batch fell from {best:.3f} to {check.pgd:.3f} "
            f"while the training attack's accuracy is {attack:.3f}"
        )
    return None
