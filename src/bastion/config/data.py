"""Where the data comes from and how it is split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from bastion.config.base import Section

__all__ = ["DataConfig"]


class DataConfig(Section):
    """A dataset by loader name, with its path (when the loader reads files) and split."""

    name: str = Field(description="loader: digits, mnist, npz, csv, sms_spam")
    path: Path | None = Field(default=None, description="file or folder the loader reads")
    seed: int = Field(default=0, description="seed of the deterministic split")
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    limit: int | None = Field(default=None, gt=0, description="keep at most this many rows")
    options: dict[str, Any] = Field(default_factory=dict, description="loader-specific")
