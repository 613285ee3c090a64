"""Where the registry and artifacts live (owned by the registry issue)."""

from __future__ import annotations

from pydantic import Field

from bastion.config.base import Section

__all__ = ["RegistryConfig"]


class RegistryConfig(Section):
    """The registry's database URL and artifact folder."""

    url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite")
    home: str = Field(default=".bastion", description="folder for the default store")
