"""APGD specifics: the step-size schedule converges where a fixed step cannot, the losses'
class requirements, and already-misclassified points."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from bastion import attacks
from bastion.errors import AttackError


class Bowl(nn.Module):
    """Label 0's loss peaks at ``centre`` and no point is ever misclassified: the attack can
    only get closer, and the point it returns (lowest margin) is the closest it found."""

    def __init__(self, centre: Tensor) -> None:
        super().__init__()
        self.centre = centre

    def forward(self, x: Tensor) -> Tensor:
        r2 = (x - self.centre).flatten(1).pow(2).sum(dim=1)
        return torch.stack([r2 + 1e-3, torch.zeros_like(r2)], dim=1)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_step_halving_converges_where_a_fixed_step_oscillates(norm: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.full((4, 1, 4, 4), 0.5)
    eps = 0.3 if norm == "linf" else 0.8
    offset = (torch.rand(x.shape, generator=gen) - 0.5) * 0.3
    if norm == "l2":
        offset = offset * 0.5 / offset.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    centre = x + offset
    y = torch.zeros(4, dtype=torch.int64)
    model = Bowl(centre)

    def distance(x_adv: Tensor) -> float:
        return float((x_adv - centre).flatten(1).norm(dim=1).max())

    apgd = attacks.create("apgd_ce", eps=eps, norm=norm, steps=100)(model, x, y)
    pgd = attacks.create("pgd", eps=eps, norm=norm, steps=100)(model, x, y)
    assert distance(apgd) < 0.01
    assert distance(pgd) > 2 * distance(apgd)


def three_classes(x: Tensor) -> Tensor:
    return x.flatten(1)[:, :3]


def test_dlr_losses_say_how_many_classes_they_need() -> None:
    x = torch.rand((2, 1, 2, 2))
    y = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(AttackError, match="apgd_t needs at least 4 classes; the model has 3"):
        attacks.create("apgd_t", steps=2)(three_classes, x, y)

    def two_classes(v: Tensor) -> Tensor:
        return v.flatten(1)[:, :2]

    with pytest.raises(AttackError, match="apgd_dlr needs at least 3 classes; the model has 2"):
        attacks.create("apgd_dlr", steps=2)(two_classes, x, y)
    attacks.create("apgd_dlr", steps=2)(three_classes, x, y)


def test_misclassified_inputs_come_back_unchanged() -> None:
    x = torch.rand((5, 1, 2, 2), generator=torch.Generator().manual_seed(0))
    wrong = three_classes(x).argmin(dim=1)
    for name in ("apgd_ce", "apgd_dlr"):
        assert torch.equal(attacks.create(name, steps=3)(three_classes, x, wrong), x)


def test_apgd_t_runs_at_most_one_target_per_other_class() -> None:
    calls: list[int] = []

    def five_classes(v: Tensor) -> Tensor:
        calls.append(v.shape[0])
        return torch.stack(
            [v.flatten(1).sum(dim=1) * 0 + 100.0, *[v[:, 0, 0, i] for i in range(4)]], 1
        )

    x = torch.rand((3, 1, 1, 4), generator=torch.Generator().manual_seed(0))
    y = torch.zeros(3, dtype=torch.int64)
    attacks.create("apgd_t", steps=2, n_target_classes=9)(five_classes, x, y)
    # one clean query, then 4 targets × (start + 2 steps); nobody is ever fooled
    assert len(calls) == 1 + 4 * 3
