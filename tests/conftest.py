"""Shared test set-up: one thread per worker (pytest -n 2 on 2 cores), shared data path,
and the small datasets and models many parts test against."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from bastion import models
from bastion.config import DataConfig
from bastion.data import Dataset, load_dataset

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real datasets beside the repo (``../shared/data`` by default)."""
    path = Path(os.environ.get("BASTION_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"shared data folder not found: {path} (set BASTION_SHARED_DATA)")
    return path


# --- shared data and model fixtures (owned by the data+models part) ---------------------------
# Session-scoped and built once per worker. They are shared between tests: never train, move or
# otherwise modify them in a test; take ``copy.deepcopy(digits_cnn)`` when a test must change it.

DIGITS_CNN_MIN_ACCURACY = 0.95


@pytest.fixture(scope="session")
def digits() -> Dataset:
    """scikit-learn's 8x8 digits, split with seed 0 (train 1258 / val 180 / test 359)."""
    return load_dataset(DataConfig(name="digits", seed=0))


def _train_digits_cnn(dataset: Dataset) -> torch.nn.Module:
    """A plain Adam loop with a one-cycle schedule: about a second on one CPU thread."""
    torch.manual_seed(0)
    model = models.build("small_cnn", input_shape=dataset.input_shape, num_classes=10)
    x, y = dataset.train.tensors()
    epochs, batch_size = 12, 64
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    steps = epochs * -(-len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
            schedule.step()
    return model.eval()


@pytest.fixture(scope="session")
def digits_cnn(digits: Dataset) -> torch.nn.Module:
    """An undefended small_cnn trained on ``digits.train`` (eval mode, >= 95 % test accuracy).

    Shared by every test of the worker: do not modify it (deepcopy first).
    """
    model = _train_digits_cnn(digits)
    x, y = digits.test.tensors()
    with torch.no_grad():
        accuracy = (model(x).argmax(dim=1) == y).double().mean().item()
    if accuracy < DIGITS_CNN_MIN_ACCURACY:
        pytest.fail(f"digits_cnn reached only {accuracy:.3f} test accuracy")
    return model


@pytest.fixture(scope="session")
def digits_cnn_dir(
    digits: Dataset, digits_cnn: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``digits_cnn`` saved as a model artifact folder (read-only by convention)."""
    return models.save(
        digits_cnn,
        tmp_path_factory.mktemp("artifacts") / "digits_cnn",
        architecture="small_cnn",
        arguments={},
        input_shape=digits.input_shape,
        classes=digits.classes,
        input_scaling=digits.input_scaling,
    )
