"""The attacks are strong enough: an undefended small_cnn on digits falls under PGD, APGD is
never weaker than PGD at the same budget, more steps or restarts never hurt, and Square
needs no gradients at all."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from bastion import attacks
from bastion.data import Dataset


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def correct(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    with torch.no_grad():
        return model(x).argmax(dim=1) == y


@pytest.fixture(scope="module")
def points(digits: Dataset, digits_cnn: nn.Module) -> tuple[Tensor, Tensor]:
    """Test points the model gets right, so accuracies are robust accuracies."""
    x, y = digits.test.tensors()
    keep = correct(digits_cnn, x, y)
    assert float(keep.float().mean()) > 0.9, "the digits model should be accurate"
    return x[keep][:200], y[keep][:200]


def test_undefended_cnn_falls_under_pgd_linf_03(
    digits_cnn: nn.Module, points: tuple[Tensor, Tensor]
) -> None:
    x, y = points
    x_adv = attacks.create("pgd", eps=0.3, norm="linf", steps=20)(digits_cnn, x, y)
    assert accuracy(digits_cnn, x_adv, y) <= 0.05


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.05), ("linf", 0.1), ("l2", 0.5)])
def test_apgd_is_never_weaker_than_pgd_at_the_same_budget(
    digits_cnn: nn.Module, points: tuple[Tensor, Tensor], norm: str, eps: float
) -> None:
    x, y = points
    steps = 20
    pgd = accuracy(
        digits_cnn, attacks.create("pgd", eps=eps, norm=norm, steps=steps)(digits_cnn, x, y), y
    )
    for name in ("apgd_ce", "apgd_dlr"):
        apgd = attacks.create(name, eps=eps, norm=norm, steps=steps)
        robust = accuracy(digits_cnn, apgd(digits_cnn, x, y), y)
        assert robust <= pgd, f"{name} {robust:.3f} > pgd {pgd:.3f} at {norm} eps={eps}"
    # the budget must leave something to find, or the comparison is empty
    assert 0.05 < pgd < 0.95


def test_apgd_t_is_never_weaker_than_apgd_dlr(
    digits_cnn: nn.Module, points: tuple[Tensor, Tensor]
) -> None:
    """APGD-T's targets include the class DLR pushes toward, and it keeps every point."""
    x, y = points
    dlr = attacks.create("apgd_dlr", eps=0.1, steps=20)(digits_cnn, x, y)
    targeted = attacks.create("apgd_t", eps=0.1, steps=20, n_target_classes=3)(digits_cnn, x, y)
    assert accuracy(digits_cnn, targeted, y) <= accuracy(digits_cnn, dlr, y) + 0.02


@pytest.mark.parametrize(
    ("short", "long"),
    [
        ({"steps": 5}, {"steps": 15}),
        ({"steps": 10, "restarts": 1}, {"steps": 10, "restarts": 3}),
    ],
)
def test_more_pgd_steps_or_restarts_are_never_weaker_per_sample(
    digits_cnn: nn.Module,
    points: tuple[Tensor, Tensor],
    short: dict[str, Any],
    long: dict[str, Any],
) -> None:
    x, y = points
    common = {"eps": 0.08, "step_size": 0.02, "seed": 3}
    weak = correct(digits_cnn, attacks.create("pgd", **common, **short)(digits_cnn, x, y), y)
    strong = correct(digits_cnn, attacks.create("pgd", **common, **long)(digits_cnn, x, y), y)
    # every sample fooled by the shorter run is fooled by the longer one
    assert not bool((strong & ~weak).any())
    assert int((weak & ~strong).sum()) > 0, "the larger budget should fool some more samples"


class _NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        raise RuntimeError("this model cannot be differentiated")


class NoGradients(nn.Module):
    """The same function as ``inner``, but any backward pass through it raises."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.inner(_NoBackward.apply(x))
        return out


def test_square_fools_a_model_whose_backward_raises(
    digits_cnn: nn.Module, points: tuple[Tensor, Tensor]
) -> None:
    x, y = points
    x, y = x[:100], y[:100]
    model = NoGradients(digits_cnn)
    with pytest.raises(RuntimeError, match="cannot be differentiated"):
        attacks.create("pgd", eps=0.2, steps=1)(model, x, y)
    # the stripes it starts from are not enough: the random search does the work
    start_only = attacks.create("square", eps=0.2, n_queries=1)(model, x, y)
    assert accuracy(digits_cnn, start_only, y) >= 0.9
    x_adv = attacks.create("square", eps=0.2, n_queries=300)(model, x, y)
    assert accuracy(digits_cnn, x_adv, y) <= 0.1


class CountingRows(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.rows = 0

    def forward(self, x: Tensor) -> Tensor:
        self.rows += x.shape[0]
        out: Tensor = self.inner(x)
        return out


def test_pgd_early_exit_saves_work_without_changing_the_result(
    digits_cnn: nn.Module, points: tuple[Tensor, Tensor]
) -> None:
    x, y = points
    results, rows = {}, {}
    for early_exit in (True, False):
        model = CountingRows(digits_cnn)
        attack = attacks.create("pgd", eps=0.15, steps=10, early_exit=early_exit)
        results[early_exit] = correct(digits_cnn, attack(model, x, y), y)
        rows[early_exit] = model.rows
    # samples never interact, so the same samples are fooled (up to float noise from
    # different batch shapes, which may flip a rare near-tie)
    assert int((results[True] != results[False]).sum()) <= 1
    assert rows[False] == 10 * len(x)
    assert rows[True] < 0.7 * rows[False]
