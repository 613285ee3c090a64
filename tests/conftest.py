"""Shared test set-up: one thread per worker (pytest -n 2 on 2 cores), shared data path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real datasets beside the repo (``../shared/data`` by default)."""
    path = Path(os.environ.get("BASTION_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"shared data folder not found: {path} (set BASTION_SHARED_DATA)")
    return path
