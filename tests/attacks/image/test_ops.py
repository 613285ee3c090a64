"""The shared numerics: the clamp trap, losses, projections, the best-point keeper and the
APGD checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from bastion import attacks
from bastion.attacks import Norm
from bastion.attacks.image._apgd import checkpoints
from bastion.attacks.image._ops import (
    BestKeeper,
    dlr_loss,
    dlr_targeted_loss,
    margin,
    project,
    random_start,
)


class Brightness(nn.Module):
    """Class 1 grows with every pixel, class 0 shrinks: the loss of label 0 increases with
    every pixel and that of label 1 decreases, everywhere, including at 0 and 1. A bias of
    ``favour`` keeps one class on top so that no point of a small ball is misclassified
    (attacks that stop at the first fooling point then run to the end)."""

    def __init__(self, favour: int | None = None) -> None:
        super().__init__()
        self.bias = torch.zeros(2)
        if favour is not None:
            self.bias[favour] = 10.0

    def forward(self, x: Tensor) -> Tensor:
        s = x.flatten(1).sum(dim=1)
        return torch.stack([-s, s], dim=1) + self.bias


@pytest.mark.parametrize(("fill", "label", "expected"), [(0.0, 0, 0.3), (1.0, 1, 0.7)])
@pytest.mark.parametrize("name", ["fgsm", "pgd", "apgd_ce"])
def test_saturated_pixels_still_get_a_gradient(
    name: str, fill: float, label: int, expected: float
) -> None:
    """The clamp trap: clamping inside the graph zeroes the gradient of every pixel whose
    random start fell outside [0, 1], and those pixels would never move. From an all-black
    (all-white) image every pixel must reach the far side of the ball."""
    x = torch.full((3, 1, 4, 4), fill)
    y = torch.full((3,), label, dtype=torch.int64)
    params: dict[str, object] = {"eps": 0.3, "random_start": True}
    if name == "fgsm":
        params["step_size"] = 0.3
    else:
        params["steps"] = 3
    x_adv = attacks.create(name, **params)(Brightness(favour=label), x, y)
    assert torch.allclose(x_adv, torch.full_like(x, expected), atol=1e-6)


def test_fgsm_without_random_start_moves_black_pixels() -> None:
    x = torch.zeros((2, 1, 4, 4))
    x_adv = attacks.create("fgsm", eps=0.25)(Brightness(), x, torch.zeros(2, dtype=torch.int64))
    assert torch.equal(x_adv, torch.full_like(x, 0.25))


def test_dlr_is_invariant_to_shift_and_positive_scale() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn((8, 10), generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    target = (y + 1) % 10
    for loss in (lambda z: dlr_loss(z, y), lambda z: dlr_targeted_loss(z, y, target)):
        assert torch.allclose(loss(logits), loss(3.0 * logits + 5.0), atol=1e-5)


def test_dlr_sign_follows_correctness() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.0], [1.0, 3.0, 0.0]])
    y = torch.tensor([0, 0])
    loss = dlr_loss(logits, y)
    assert float(loss[0]) < 0 < float(loss[1])
    assert torch.equal(margin(logits, y) < 0, torch.tensor([False, True]))


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L2])
def test_projection_and_random_start_stay_in_ball_and_range(norm: Norm) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((16, 3, 5, 5), generator=gen)
    eps = 0.2 if norm is Norm.LINF else 1.0
    far = x + 5.0 * torch.randn(x.shape, generator=gen)
    for point in (project(far, x, eps, norm), random_start(x, eps, norm, gen)):
        delta = (point - x).flatten(1)
        size = delta.abs().amax(dim=1) if norm is Norm.LINF else delta.norm(dim=1)
        assert float(size.max()) <= eps * (1 + 1e-5)
        assert float(point.min()) >= 0.0
        assert float(point.max()) <= 1.0


def test_best_keeper_keeps_first_fooling_point_then_lowest_margin() -> None:
    x = torch.zeros((2, 1))
    keeper = BestKeeper(x)
    index = torch.arange(2)
    y = torch.tensor([0, 0])
    keeper.offer(index, torch.full((2, 1), 1.0), torch.tensor([[2.0, 0.0], [2.0, 1.0]]), y)
    fooled = keeper.offer(index, torch.full((2, 1), 2.0), torch.tensor([[0.0, 1.0], [3.0, 0.0]]), y)
    assert fooled.tolist() == [True, False]
    keeper.offer(index, torch.full((2, 1), 3.0), torch.tensor([[0.0, 5.0], [0.5, 0.0]]), y)
    # sample 0: first fooling point (2.0) is kept although 3.0 fools more;
    # sample 1: the lowest margin (0.5 at 3.0) wins over margins 1.0 and 3.0
    assert keeper.x.flatten().tolist() == [2.0, 3.0]
    assert keeper.fooled.tolist() == [True, False]


def test_apgd_checkpoints_follow_the_paper() -> None:
    # p_j = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (Croce & Hein 2020, §3.2)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(1000) == [220, 410, 570, 700, 800, 870, 930, 990]
    assert checkpoints(10) == [3, 5, 6, 7, 8, 9, 10]
    assert checkpoints(1) == [1]
