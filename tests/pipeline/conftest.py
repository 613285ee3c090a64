"""A pipeline small enough to run several times per test: 400 digits, a 4/8-channel CNN,
two epochs of each training and a two-attack threat model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.config import BastionConfig, parse_config
from bastion.registry import Registry


def tiny_pipeline(home: Path, **sections: Any) -> dict[str, Any]:
    """The raw YAML mapping of a tiny pipeline whose Bastion home is ``home``."""
    raw: dict[str, Any] = {
        "name": "tiny",
        "data": {"name": "digits", "seed": 0, "limit": 400, "val_fraction": 0.15},
        "model": {"architecture": "small_cnn", "arguments": {"channels": [4, 8], "hidden": 16}},
        "train": {"epochs": 6, "batch_size": 32, "lr": 0.02, "seed": 0},
        "threat_model": {
            "name": "tiny-linf",
            "image": {
                "attacks": [
                    {"name": "fgsm", "params": {"eps": 0.1}},
                    {"name": "pgd", "params": {"eps": 0.1, "steps": 3}},
                ]
            },
        },
        "recipe": {
            "method": "pgd_at",
            "epochs": 2,
            "attack": {"steps": 2},
            "check": {"samples": 16, "steps": 2},
            "tracking": {"mlflow": False},
        },
        "evaluation": {"max_samples": 60, "latency_samples": 5, "batch_size": 128},
        "gate": {
            "min_clean_accuracy": 0.2,
            "max_clean_drop": 1.0,  # always met; makes the production comparison visible
            "forbidden_flags": [],
            "promote_to": "staging",
        },
        "registry": {"home": str(home)},
    }
    for key, value in sections.items():
        raw[key] = value if not isinstance(value, dict) else {**raw.get(key, {}), **value}
    return raw


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's registry lives in its tmp_path, whatever the environment says."""
    monkeypatch.delenv("BASTION_DATABASE_URL", raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / ".bastion"


@pytest.fixture
def raw(home: Path) -> dict[str, Any]:
    """A fresh raw mapping of the tiny pipeline (tests edit it freely)."""
    return tiny_pipeline(home)


@pytest.fixture
def config(raw: dict[str, Any]) -> BastionConfig:
    return parse_config(raw)


@pytest.fixture
def registry(config: BastionConfig) -> Iterator[Registry]:
    with Registry.open(config.registry) as opened:
        yield opened
