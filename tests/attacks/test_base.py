"""The base class and registry: errors that name what is wrong, budget verification, and a
cost that orders a suite cheapest first."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from bastion import attacks
from bastion.attacks import ImageAttack, Model, Norm, UnknownParameterError
from bastion.attacks.params import Interval, OneOf, Param
from bastion.errors import AttackError, BudgetViolation, ParameterError


def test_unknown_parameter_message_lists_the_parameters() -> None:
    with pytest.raises(UnknownParameterError) as info:
        attacks.create("pgd", epss=0.1)
    assert str(info.value) == (
        "pgd has no parameter 'epss' (did you mean 'eps'?); its parameters are early_exit, "
        "eps, loss, norm, random_start, restarts, seed, step_size, steps"
    )
    assert isinstance(info.value, ParameterError)
    assert info.value.param == "epss"


def test_bad_value_message_follows_the_one_form() -> None:
    with pytest.raises(ParameterError) as info:
        attacks.create("pgd", eps=-0.1)
    assert str(info.value) == (
        "The 'eps' parameter of pgd must be a float in (0, inf). Got -0.1 instead."
    )


@pytest.mark.parametrize("name", ["pgd", "apgd_ce"])
def test_linf_eps_above_one_is_refused_but_l2_allows_it(name: str) -> None:
    with pytest.raises(ParameterError, match="for norm 'linf'"):
        attacks.create(name, eps=2.0, norm="linf")
    assert attacks.create(name, eps=2.0, norm="l2").budget == 2.0


def test_unknown_attack_lists_the_known_ones() -> None:
    with pytest.raises(AttackError) as info:
        attacks.create("pgdd")
    for name in attacks.names():
        assert name in str(info.value)


def test_cost_orders_the_standard_suite() -> None:
    suite = [
        attacks.create("square", n_queries=5000),
        attacks.create("apgd_t", steps=100, n_target_classes=9),
        attacks.create("pgd", steps=10),
        attacks.create("apgd_ce", steps=100),
        attacks.create("fgsm"),
    ]
    ordered = [a.name for a in sorted(suite, key=lambda a: a.cost())]
    assert ordered == ["fgsm", "pgd", "apgd_ce", "apgd_t", "square"]
    # restarts and targets multiply the cost
    assert attacks.create("pgd", steps=10, restarts=3).cost() == 3 * attacks.create("pgd").cost()
    assert attacks.create("apgd_t", n_target_classes=3).cost() < attacks.create("apgd_t").cost()


def test_registry_rejects_a_taken_name() -> None:
    class Impostor(ImageAttack):
        name = "pgd"
        version = "1.0.0"

        def _perturb(
            self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator
        ) -> Tensor:
            return x

    with pytest.raises(AttackError, match="already taken"):
        attacks.register(Impostor)
    assert attacks.get("pgd") is not Impostor


class Cheat(ImageAttack):
    """Not registered: returns whatever ``how`` says, to exercise ``verify``."""

    name = "cheat"
    version = "0.0.1"
    params: ClassVar = {
        **ImageAttack.params,
        "how": Param(OneOf(("linf", "l2", "range", "shape", "nan", "dtype")), "linf"),
        "eps": Param(Interval(float, 0, None, "neither"), 0.1),
    }

    @property
    def norm(self) -> Norm:
        return Norm.L2 if self.how == "l2" else Norm.LINF

    @property
    def budget(self) -> float:
        return float(self.eps)

    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        if self.how == "linf":
            return (x + 2 * self.eps).clamp(0, 1)
        if self.how == "l2":
            return (x + self.eps).clamp(0, 1)  # L2 norm of 64 elements * 0.1 = 0.8
        if self.how == "range":
            return x + 0.6
        if self.how == "shape":
            return x[:, :, :4]
        if self.how == "dtype":
            return x.double()
        return x * float("nan")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("linf", "L∞ distance"),
        ("l2", "L2 distance"),
        ("range", r"left \[0, 1\]"),
        ("shape", "returned shape"),
        ("dtype", "returned shape"),
        ("nan", "non-finite"),
    ],
)
def test_results_outside_budget_or_range_are_caught(how: str, message: str) -> None:
    x = torch.full((2, 1, 8, 8), 0.5)
    with pytest.raises(BudgetViolation, match=message):
        Cheat(how=how)(nn.Identity(), x, torch.zeros(2, dtype=torch.int64))
