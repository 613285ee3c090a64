"""Square attack specifics: the p schedule, the query budget and who gets queried."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from bastion import attacks
from bastion.attacks.image.square import p_schedule
from bastion.data import Dataset


def test_p_schedule_halves_at_the_papers_iterations_rescaled_to_the_budget() -> None:
    # on a 10 000-query budget: p_init until 10, then halved after 10, 50, 200, ... 8000
    assert p_schedule(0.8, 0, 10000) == 0.8
    assert p_schedule(0.8, 10, 10000) == 0.8
    assert p_schedule(0.8, 11, 10000) == 0.4
    assert p_schedule(0.8, 51, 10000) == 0.2
    assert p_schedule(0.8, 201, 10000) == 0.1
    assert p_schedule(0.8, 9999, 10000) == pytest.approx(0.8 / 512)
    # on 1000 queries the same halvings come ten times sooner
    assert p_schedule(0.8, 1, 1000) == 0.8
    assert p_schedule(0.8, 2, 1000) == 0.4
    assert p_schedule(0.8, 999, 1000) == pytest.approx(0.8 / 512)


class Counting(nn.Module):
    """Records the rows of every batch it is asked about; forbids gradients."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.rows: list[int] = []

    def forward(self, x: Tensor) -> Tensor:
        assert not torch.is_grad_enabled(), "Square must not build a graph"
        self.rows.append(x.shape[0])
        out: Tensor = self.inner(x)
        return out


def test_square_respects_its_budget_and_only_queries_unfooled_points(
    digits: Dataset, digits_cnn: nn.Module
) -> None:
    x, y = digits.test.tensors()
    x, y = x[:60], y[:60]
    model = Counting(digits_cnn)
    n_queries = 60
    x_adv = attacks.create("square", eps=0.15, n_queries=n_queries)(model, x, y)
    with torch.no_grad():
        fooled = digits_cnn(x_adv).argmax(dim=1) != y
    assert 0 < int(fooled.sum()) < len(x), "the check needs fooled and standing samples"
    # one clean query, then at most n_queries per sample
    assert len(model.rows) <= 1 + n_queries
    assert model.rows[0] == len(x)
    assert all(b <= a for a, b in zip(model.rows[1:], model.rows[2:], strict=False))
    assert model.rows[-1] == int((~fooled).sum())
    assert sum(model.rows[1:]) < len(x) * n_queries
