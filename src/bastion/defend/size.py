"""Request-size limit: refuse oversized bodies before they cost memory or parsing time.

The declared ``Content-Length`` is checked first; the body is then read in chunks and the
read stops as soon as the limit is passed, so a client that lies about (or omits) the length
cannot make the server buffer more than the limit. Gradient story: ``NONE``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

from bastion.defend.base import Gradient, Stage
from bastion.errors import RejectionError

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    """413 when the body is larger than ``max_bytes``."""

    name: ClassVar[str] = "body_size"
    stage: ClassVar[Stage] = Stage.REQUEST
    gradient: ClassVar[Gradient] = Gradient.NONE

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def check_declared(self, headers: Mapping[str, str]) -> None:
        declared = headers.get("content-length")
        if declared is None:
            return
        try:
            size = int(declared)
        except ValueError:
            raise RejectionError(
                f"Content-Length must be an integer; got {declared!r}",
                status=400,
                code="bad_request",
                layer=self.name,
            ) from None
        if size > self.max_bytes:
            raise self._too_large(size)

    async def read(self, chunks: AsyncIterator[bytes]) -> bytes:
        """The whole body, or 413 as soon as more than ``max_bytes`` arrived."""
        parts: list[bytes] = []
        total = 0
        async for chunk in chunks:
            total += len(chunk)
            if total > self.max_bytes:
                raise self._too_large(total, at_least=True)
            parts.append(chunk)
        return b"".join(parts)

    def _too_large(self, size: int, *, at_least: bool = False) -> RejectionError:
        got = f"at least {size}" if at_least else str(size)
        return RejectionError(
            f"the request body may be at most {self.max_bytes} bytes; got {got}",
            status=413,
            code="payload_too_large",
            layer=self.name,
        )
