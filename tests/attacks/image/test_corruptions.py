"""Gaussian noise and occlusion: what they change, and that they keep a fooling draw."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from bastion import attacks
from bastion.errors import AttackError


class Sign(nn.Module):
    """Class 1 iff the mean pixel is above 0.5: noise around mid-grey fools half the time."""

    def forward(self, x: Tensor) -> Tensor:
        s = (x - 0.5).flatten(1).mean(dim=1)
        return torch.stack([-s, s], dim=1)


def fooled_fraction(x_adv: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((Sign()(x_adv).argmax(dim=1) != y).float().mean())


def test_gaussian_noise_keeps_a_fooling_draw() -> None:
    x = torch.full((400, 1, 8, 8), 0.5)
    y = torch.zeros(400, dtype=torch.int64)
    one = attacks.create("gaussian_noise", sigma=0.1, trials=1)(Sign(), x, y)
    many = attacks.create("gaussian_noise", sigma=0.1, trials=8)(Sign(), x, y)
    # one draw fools about half the samples; eight fool all but about 1/256 of them
    assert 0.35 < fooled_fraction(one, y) < 0.65
    assert fooled_fraction(many, y) > 0.97


def test_gaussian_noise_has_the_asked_spread_and_is_never_the_clean_input() -> None:
    x = torch.full((50, 3, 8, 8), 0.5)
    y = torch.zeros(50, dtype=torch.int64)
    x_adv = attacks.create("gaussian_noise", sigma=0.05, trials=3)(Sign(), x, y)
    noise = x_adv - x
    assert float(noise.std()) == pytest.approx(0.05, rel=0.1)
    assert bool((noise.flatten(1).abs().amax(dim=1) > 0).all())


def test_gaussian_noise_clips_to_the_unit_range() -> None:
    x = torch.cat([torch.zeros(20, 1, 4, 4), torch.ones(20, 1, 4, 4)])
    y = torch.zeros(40, dtype=torch.int64)
    x_adv = attacks.create("gaussian_noise", sigma=2.0, trials=2)(Sign(), x, y)
    assert float(x_adv.min()) >= 0.0
    assert float(x_adv.max()) <= 1.0


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("fill", ["constant", "noise"])
def test_occlusion_overwrites_one_square_patch(channels: int, fill: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((30, channels, 10, 12), generator=gen) * 0.5 + 0.25
    y = torch.zeros(30, dtype=torch.int64)
    attack = attacks.create("occlusion", size=3, trials=4, fill=fill, value=0.0)
    x_adv = attack(Sign(), x, y)
    assert attack.budget == 9
    assert attack.budget_for(x) == 9 * channels
    changed = (x_adv != x).any(dim=1)  # (N, H, W) pixels touched in any channel
    for mask in changed:
        rows = mask.any(dim=1).nonzero().flatten()
        cols = mask.any(dim=0).nonzero().flatten()
        assert 0 < len(rows) <= 3
        assert 0 < len(cols) <= 3
        # the changed pixels lie in one 3x3 window
        assert int(rows.max() - rows.min()) < 3
        assert int(cols.max() - cols.min()) < 3
    if fill == "constant":
        assert torch.all(x_adv[x_adv != x] == 0.0)


def test_occlusion_patch_must_fit_the_image() -> None:
    attack = attacks.create("occlusion", size=9)
    with pytest.raises(AttackError, match="does not fit 8×8"):
        attack(Sign(), torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(AttackError, match=r"\(N, C, H, W\)"):
        attacks.create("occlusion", size=2)(
            Sign(), torch.rand(2, 64), torch.zeros(2, dtype=torch.int64)
        )


def test_occlusion_keeps_a_fooling_patch() -> None:
    """Only a grey patch exactly over the bright 2x2 corner fools (1 position of 49)."""
    x = torch.full((100, 1, 8, 8), 0.5)
    x[:, :, :2, :2] = 1.0
    y = torch.ones(100, dtype=torch.int64)
    one = attacks.create("occlusion", size=2, trials=1, value=0.5)(Sign(), x, y)
    many = attacks.create("occlusion", size=2, trials=250)(Sign(), x, y)
    assert fooled_fraction(one, y) < 0.1
    assert fooled_fraction(many, y) > 0.9
    fooled = Sign()(many).argmax(dim=1) != y
    assert torch.all(many[fooled] == 0.5)
