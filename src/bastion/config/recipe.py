"""The adversarial-training recipe (owned by the training engine's issue)."""

from __future__ import annotations

from pydantic import Field

from bastion.config.base import Section

__all__ = ["RecipeConfig"]


class RecipeConfig(Section):
    """How to train adversarially against the threat model."""

    method: str = Field(default="pgd_at")
    epochs: int = Field(default=10, ge=1)
