"""Which architecture to build (or which artifact to load) and how to train it cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from bastion.config.base import Section

__all__ = ["ModelConfig", "TrainConfig"]


class ModelConfig(Section):
    """A reference architecture by name, or an existing artifact folder to load."""

    architecture: str = Field(default="small_cnn", description="mlp, small_cnn, ...")
    arguments: dict[str, Any] = Field(default_factory=dict)
    path: Path | None = Field(default=None, description="load this artifact instead")


class TrainConfig(Section):
    """Plain (clean) training: the baseline before any adversarial recipe."""

    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=128, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    seed: int = 0
