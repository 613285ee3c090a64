"""Where the registry and artifacts live (owned by the registry issue).

The URL chosen at run time follows one order (``bastion.registry.resolve_location``): an
explicit URL, then the ``BASTION_DATABASE_URL`` environment variable, then ``url`` here,
then SQLite at ``<home>/registry.db``.
"""

from __future__ import annotations

from pydantic import Field

from bastion.config.base import Section

__all__ = ["RegistryConfig"]


class RegistryConfig(Section):
    """The registry's database URL and artifact folder."""

    url: str | None = Field(
        default=None,
        min_length=1,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db; default SQLite",
    )
    home: str = Field(
        default=".bastion",
        min_length=1,
        description="folder for the default SQLite registry (and artifacts, unless set)",
    )
    artifacts: str | None = Field(
        default=None,
        min_length=1,
        description="folder of the content-addressed artifact store; default <home>/artifacts",
    )
