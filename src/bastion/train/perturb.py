"""Where a training batch's adversarial inputs come from: the method's own attack, or a mix.

Training attacks are built from the same library evaluation uses, one per batch with that
batch's seed, so a batch's perturbation is a function of the run's seed and the batch's
position alone — which is what lets a resumed run repeat it exactly. PGD is the one
exception to "the same class": training takes the library PGD's last iterate
(:class:`~bastion.train.madry.MadryPGD`), including a ``pgd`` entry of a mix.

Mixed perturbation types (``recipe.perturbations``) either draw one attack per batch with
probability proportional to its weight, or give every sample its worst case over all of
them (the "max" strategy of Tramèr & Boneh 2019), judged by the cross-entropy of the model
on each candidate.

Fast FGSM-RS has a ladder of safer settings for the catastrophic-overfitting guard: level 0
is the configured step, level 1 halves it (with a random start), level 2 is 2-step PGD.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bastion import attacks
from bastion.attacks.base import Attack, ImageAttack
from bastion.config.recipe import MixStrategy
from bastion.errors import ConfigError
from bastion.train.madry import MadryPGD
from bastion.train.plan import FGSM_RS_STEP, Mode, Plan
from bastion.train.trades import TradesKL

__all__ = ["FALLBACK_LEVELS", "Perturber"]

#: how many safer settings the FGSM-RS ladder has above the configured one
FALLBACK_LEVELS = 2


class Perturber:
    """``perturber(model, x, y, eps=..., seed=...)`` -> adversarial ``x`` for the plan."""

    def __init__(self, plan: Plan) -> None:
        if not plan.adversarial or plan.eps is None:
            raise ValueError("a Perturber needs an adversarial plan")
        self.plan = plan
        self.eps_final = plan.eps
        #: the guard's position on the FGSM-RS ladder (0: as configured)
        self.level = 0

    def method_attack(self, eps: float, seed: int) -> ImageAttack:
        """The method's own training attack at budget ``eps``."""
        return _image(self._method_attack(eps, seed))

    def _method_attack(self, eps: float, seed: int) -> Attack:
        plan = self.plan
        if plan.mode is Mode.FGSM_RS:
            return self._fgsm_rs(eps, seed)
        if plan.mode is Mode.TRADES:
            return TradesKL(eps=eps, steps=plan.steps, step_size=plan.step_size, seed=seed)
        return MadryPGD(
            eps=eps,
            steps=plan.steps,
            step_size=plan.step_size,
            random_start=plan.random_start,
            seed=seed,
        )

    def _fgsm_rs(self, eps: float, seed: int) -> Attack:
        plan = self.plan
        step = plan.step_size if plan.step_size is not None else FGSM_RS_STEP * eps
        if self.level == 0:
            return attacks.create(
                "fgsm", eps=eps, step_size=step, random_start=plan.random_start, seed=seed
            )
        if self.level == 1:
            return attacks.create("fgsm", eps=eps, step_size=step / 2, random_start=True, seed=seed)
        return MadryPGD(eps=eps, steps=2, step_size=eps / 2, seed=seed)

    def describe_level(self) -> str:
        """Human-readable training attack at the current guard level."""
        plan = self.plan
        step = "1.25·eps" if plan.step_size is None else f"{plan.step_size:g}"
        rs = "random start" if plan.random_start else "no random start"
        return {
            0: f"FGSM step {step}, {rs}",
            1: f"FGSM step ({step})/2, random start",
        }.get(self.level, "PGD 2 steps of eps/2, random start")

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, *, eps: float, seed: int) -> Tensor:
        if eps <= 0 or x.shape[0] == 0:
            return x.detach().clone()
        if not self.plan.mix:
            return self.method_attack(eps, seed)(model, x, y)
        return self._mixed(model, x, y, eps, seed)

    def mix_attack(self, index: int, eps: float, seed: int) -> ImageAttack:
        entry = self.plan.mix[index]
        params = dict(entry.params)
        if entry.scales_eps:
            params["eps"] = float(params["eps"]) * eps / self.eps_final
        if (
            entry.name == "pgd"
            and params.get("restarts", 1) == 1
            and params.get("loss", "ce") == "ce"
        ):
            return MadryPGD(**params, seed=seed)
        return _image(attacks.create(entry.name, **params, seed=seed))

    def draw(self, seed: int) -> int:
        """Strategy ``sample``: the mix entry a batch with ``seed`` trains on."""
        generator = torch.Generator().manual_seed(seed)
        weights = torch.tensor([m.weight for m in self.plan.mix], dtype=torch.float64)
        return int(torch.multinomial(weights, 1, generator=generator))

    def _mixed(self, model: nn.Module, x: Tensor, y: Tensor, eps: float, seed: int) -> Tensor:
        mix = self.plan.mix
        if self.plan.mix_strategy is MixStrategy.SAMPLE:
            return self.mix_attack(self.draw(seed), eps, seed)(model, x, y)
        best = x.detach().clone()
        best_loss = torch.full((x.shape[0],), float("-inf"), device=x.device)
        was_training = model.training
        for index in range(len(mix)):
            candidate = self.mix_attack(index, eps, seed + index)(model, x, y)
            model.eval()
            try:
                with torch.no_grad():
                    loss = F.cross_entropy(model(candidate), y, reduction="none")
            finally:
                model.train(was_training)
            better = loss > best_loss
            best[better] = candidate[better]
            best_loss = torch.where(better, loss, best_loss)
        return best


def _image(attack: Attack) -> ImageAttack:
    if not isinstance(attack, ImageAttack):
        raise ConfigError(
            f"{attack.name} is a {attack.modality.value} attack; training needs image attacks"
        )
    return attack
