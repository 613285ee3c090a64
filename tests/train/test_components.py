"""The loop's parts on their own: training attacks, the perturbation mix, AWP, the guard's
decision, checkpoint files."""

from __future__ import annotations

import copy
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bastion.attacks.image.pgd import PGD
from bastion.config import RecipeConfig, TrainConfig
from bastion.config.recipe import GuardConfig
from bastion.data import Dataset
from bastion.errors import TrainingError
from bastion.train import checkpoint as ckpt
from bastion.train import resolve_plan
from bastion.train.awp import WeightPerturbation
from bastion.train.guard import Check, GuardState, assess
from bastion.train.madry import MadryPGD
from bastion.train.objectives import Objective
from bastion.train.perturb import Perturber
from bastion.train.plan import Mode
from bastion.train.trades import TradesKL


@pytest.fixture
def batch(digits: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digits.test.tensors()
    return x[:128], y[:128]


def _ce(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def test_training_pgd_returns_the_last_iterate_not_the_first_fooling_one(
    digits_cnn: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    """Why training has its own PGD: the library's stops at the boundary (for accuracy),
    training wants the loss maximiser."""
    x, y = batch
    library = PGD(eps=0.2, steps=10, seed=0)(digits_cnn, x, y)
    madry = MadryPGD(eps=0.2, steps=10, seed=0)(digits_cnn, x, y)
    assert (madry - x).abs().max() <= 0.2 + 1e-6
    assert float(_ce(digits_cnn, madry, y).mean()) > 2 * float(_ce(digits_cnn, library, y).mean())


def test_trades_kl_attack_raises_the_divergence_within_budget(
    digits_cnn: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = batch
    x_adv = TradesKL(eps=0.1, steps=5, seed=0)(digits_cnn, x, y)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert float(x_adv.min()) >= 0.0
    assert float(x_adv.max()) <= 1.0
    with torch.no_grad():
        p = F.softmax(digits_cnn(x), dim=1)
        noise = (
            x + 0.1 * (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) - 1)
        ).clamp(0, 1)
        kl_adv = F.kl_div(F.log_softmax(digits_cnn(x_adv), 1), p, reduction="batchmean")
        kl_noise = F.kl_div(F.log_softmax(digits_cnn(noise), 1), p, reduction="batchmean")
    assert float(kl_adv) > 10 * float(kl_noise)


def _mix_plan(strategy: str) -> Perturber:
    recipe = RecipeConfig(
        eps=0.2,
        perturbations={
            "strategy": strategy,
            "attacks": [
                {"name": "fgsm", "weight": 1},
                {"name": "pgd", "params": {"steps": 3}, "weight": 3},
            ],
        },
    )
    return Perturber(resolve_plan(TrainConfig(), recipe, None))


def test_sample_strategy_draws_attacks_in_proportion_to_weight() -> None:
    perturber = _mix_plan("sample")
    counts = Counter(perturber.draw(seed) for seed in range(2000))
    assert counts[1] / 2000 == pytest.approx(0.75, abs=0.04)


def test_max_strategy_takes_each_samples_worst_case(
    digits_cnn: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = batch
    perturber = _mix_plan("max")
    chosen = perturber(digits_cnn, x, y, eps=0.2, seed=7)
    candidates = [perturber.mix_attack(i, 0.2, 7 + i)(digits_cnn, x, y) for i in range(2)]
    losses = torch.stack([_ce(digits_cnn, c, y) for c in candidates])
    assert torch.allclose(_ce(digits_cnn, chosen, y), losses.max(dim=0).values)
    assert (losses[0] > losses[1]).any()
    assert (losses[1] > losses[0]).any()


def test_mix_eps_follows_the_ramp() -> None:
    perturber = _mix_plan("sample")
    assert perturber.mix_attack(0, 0.05, 0).get_params()["eps"] == pytest.approx(0.05)
    assert perturber.mix_attack(1, 0.2, 0).get_params()["eps"] == pytest.approx(0.2)


def test_awp_moves_each_weight_matrix_uphill_by_gamma_of_its_norm(
    digits_cnn: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    model = copy.deepcopy(digits_cnn)
    x, y = batch
    x_adv = MadryPGD(eps=0.1, steps=3, seed=0)(model, x, y)
    objective = Objective(Mode.PGD_AT, 6.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss_before = float(objective(model, x, x_adv, y, len(y)).loss.detach())
    awp = WeightPerturbation(model, objective, gamma=0.02)
    diffs = awp.perturb(x, x_adv, y, len(y))
    assert float(objective(model, x, x_adv, y, len(y)).loss.detach()) > loss_before
    for w, d in zip(awp.weights, diffs, strict=True):
        original = (w.detach() - d).norm()
        assert float(d.norm()) == pytest.approx(0.02 * float(original), rel=1e-4)
    for name, value in model.state_dict().items():
        if value.dim() <= 1:  # biases are never perturbed
            assert torch.equal(value, before[name])
    awp.restore(diffs)
    for name, value in model.state_dict().items():
        assert torch.allclose(value, before[name], atol=1e-6)


def test_guard_flags_a_drop_or_a_masked_collapse_and_nothing_else() -> None:
    config = GuardConfig(drop=0.2, fraction=0.25, gap=0.3)
    fresh = GuardState()
    # the first epoch has nothing to compare with
    assert assess(config, fresh, Check(clean=0.9, pgd=0.0, attack=0.9)) is None
    seasoned = GuardState(best_pgd=0.5)
    assert assess(config, seasoned, Check(clean=0.9, pgd=0.4, attack=0.6)) is None
    drop = assess(config, seasoned, Check(clean=0.9, pgd=0.2, attack=0.55))
    assert drop is not None
    assert "fell from 0.500 to 0.200" in drop
    # small accuracies: a drop of 0.14 is a collapse when the FGSM accuracy pulls away ...
    low = GuardState(best_pgd=0.15)
    masked = assess(config, low, Check(clean=0.8, pgd=0.01, attack=0.5))
    assert masked is not None
    assert "training attack's accuracy is 0.500" in masked
    # ... and noise when it does not
    assert assess(config, low, Check(clean=0.8, pgd=0.01, attack=0.2)) is None
    assert assess(config, low, Check(clean=0.8, pgd=0.1, attack=0.5)) is None


def test_rng_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = ckpt.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    path = ckpt.save_checkpoint(tmp_path / "c.pt", {"rng": state, "epoch": 1, "step": 0})
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    ckpt.set_rng_state(ckpt.load_checkpoint(path)["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]


def test_latest_checkpoint_skips_a_truncated_file(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    ckpt.save_checkpoint(folder / "epoch-0001.pt", {"epoch": 1, "step": 0})
    ckpt.save_checkpoint(folder / "epoch-0002.pt", {"epoch": 2, "step": 0})
    blob = (folder / "epoch-0002.pt").read_bytes()
    (folder / "epoch-0003.pt").write_bytes(blob[: len(blob) // 2])
    found = ckpt.find_latest(tmp_path)
    assert found is not None
    assert found[0].name == "epoch-0002.pt"
    with pytest.raises(TrainingError, match="unreadable or truncated"):
        ckpt.load_checkpoint(folder / "epoch-0003.pt")
    ckpt.prune(tmp_path, keep=1)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["epoch-0003.pt"]
