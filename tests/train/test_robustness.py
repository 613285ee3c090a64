"""What adversarial training is for, measured: PGD-AT lifts PGD accuracy far above the
undefended model's; TRADES trades clean for robust accuracy as β grows; the guard catches
fast FGSM training that collapses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bastion import models
from bastion.attacks.image.pgd import PGD
from bastion.config import DataConfig, RecipeConfig, ThreatModel, TrainConfig
from bastion.data import Dataset, load_dataset
from bastion.train import fit
from bastion.train.guard import accuracy


def _pgd_accuracy(model: nn.Module, data: Dataset, eps: float) -> float:
    x, y = data.test.tensors()
    return accuracy(model, x, y, PGD(eps=eps, steps=20, seed=0))


def _clean_accuracy(model: nn.Module, data: Dataset) -> float:
    x, y = data.test.tensors()
    return accuracy(model, x, y)


def _small_cnn(data: Dataset) -> nn.Module:
    torch.manual_seed(0)
    return models.build("small_cnn", input_shape=data.input_shape, num_classes=10)


@pytest.mark.slow
def test_pgd_at_lifts_robust_accuracy_far_above_the_undefended_model(
    digits: Dataset, digits_cnn: nn.Module, tmp_path: Path
) -> None:
    threat = ThreatModel.model_validate(
        {"image": {"attacks": [{"name": "pgd", "params": {"eps": 0.3, "steps": 20}}]}}
    )
    recipe = RecipeConfig(
        method="pgd_at",
        attack={"steps": 3},
        lr_schedule={"kind": "one_cycle"},
        exposure={"epochs": 4},
    )
    train = TrainConfig(epochs=10, batch_size=64, lr=1e-2, seed=0)
    result = fit(
        _small_cnn(digits), digits, train, recipe, threat, out_dir=tmp_path, progress=False
    )
    assert result.plan.eps == pytest.approx(0.3)  # taken from the threat model
    undefended = _pgd_accuracy(digits_cnn, digits, 0.3)
    defended = _pgd_accuracy(result.model, digits, 0.3)
    clean = _clean_accuracy(result.model, digits)
    print(
        f"\ndigits, PGD-20 at eps 0.3: undefended {undefended:.3f}, PGD-AT {defended:.3f} "
        f"(clean accuracy {_clean_accuracy(digits_cnn, digits):.3f} -> {clean:.3f})"
    )
    assert undefended <= 0.02
    assert defended >= 0.15
    assert clean >= 0.75


@pytest.mark.slow
def test_trades_larger_beta_is_more_robust_and_less_accurate(
    digits: Dataset, tmp_path: Path
) -> None:
    train = TrainConfig(epochs=6, batch_size=64, lr=1e-2, seed=0)
    outcome = {}
    for beta in (0.5, 10.0):
        recipe = RecipeConfig(
            method="trades",
            eps=0.2,
            beta=beta,
            attack={"steps": 3},
            lr_schedule={"kind": "one_cycle"},
        )
        result = fit(
            _small_cnn(digits), digits, train, recipe, out_dir=tmp_path / str(beta), progress=False
        )
        outcome[beta] = (
            _clean_accuracy(result.model, digits),
            _pgd_accuracy(result.model, digits, 0.2),
        )
    (clean_small, robust_small), (clean_large, robust_large) = outcome[0.5], outcome[10.0]
    print(
        f"\nTRADES on digits, eps 0.2 (clean / PGD-20): beta 0.5 {clean_small:.3f} / "
        f"{robust_small:.3f}, beta 10 {clean_large:.3f} / {robust_large:.3f}"
    )
    assert robust_large >= robust_small + 0.05
    assert clean_large < clean_small


@pytest.mark.slow
def test_guard_rolls_back_fgsm_training_that_collapses(shared_data: Path, tmp_path: Path) -> None:
    """FGSM without a random start at ε = 0.3 on MNIST: PGD accuracy on the held-out batch
    falls to zero while FGSM accuracy climbs (catastrophic overfitting)."""
    data = load_dataset(DataConfig(name="mnist", path=shared_data / "mnist", seed=0, limit=1600))
    recipe = RecipeConfig(method="fgsm_rs", eps=0.3, attack={"random_start": False})
    train = TrainConfig(epochs=6, batch_size=64, lr=2e-3, seed=0)
    result = fit(_small_cnn(data), data, train, recipe, out_dir=tmp_path, progress=False)
    assert result.events, "the guard never fired"
    event = result.events[0]
    print(f"\nguard: {event}")
    assert event["event"] == "rollback"
    assert event["from"] == "FGSM step 1.25·eps, no random start"
    assert "random start" in event["to"]
    rolled = [r for r in result.history if r.get("rolled_back")]
    assert [r["epoch"] for r in rolled] == [event["epoch"]]
    kept = [r["epoch"] for r in result.history if not r.get("rolled_back")]
    assert kept == [1, 2, 3, 4, 5, 6]  # the collapsed epoch was trained again
