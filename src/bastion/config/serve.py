"""The guarded server's layers and limits (owned by the server issue)."""

from __future__ import annotations

from pydantic import Field

from bastion.config.base import Section

__all__ = ["ServeConfig"]


class ServeConfig(Section):
    """Host, port and the ordered defence layers."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
