"""The strict base every config section derives from: unknown keys are errors, values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """A config section: unknown keys are rejected, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
