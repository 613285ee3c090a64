"""Per-key rate limiting with the ``limits`` package.

A moving window counts every request exactly (no fixed-window burst at the boundary), so
"100/minute" means no 101st request inside any sixty seconds. Storage is in memory by
default — per process, so with several workers each enforces the limit alone — and Redis by
URL (``redis://host:6379``) when workers or replicas must share one count. Gradient story:
``NONE``; it does limit the query budget of black-box attacks, which is its point.
"""

from __future__ import annotations

import math
import time
from typing import ClassVar

from limits import RateLimitItem, parse_many, storage, strategies
from limits.errors import ConfigurationError

from bastion.defend.base import Gradient, RejectionError, Stage
from bastion.errors import ServeError

__all__ = ["RateLimit"]


class RateLimit:
    """429 with ``Retry-After`` once ``identity`` has used up any of the configured rates."""

    name: ClassVar[str] = "rate_limit"
    stage: ClassVar[Stage] = Stage.REQUEST
    gradient: ClassVar[Gradient] = Gradient.NONE

    def __init__(self, *, rate: str, storage_url: str = "memory://") -> None:
        try:
            self.items: list[RateLimitItem] = parse_many(rate)
        except ValueError as exc:
            raise ServeError(f"rate limit {rate!r} is not valid: {exc}") from exc
        try:
            self.storage = storage.storage_from_string(storage_url)
        except ConfigurationError as exc:
            raise ServeError(f"rate-limit storage {storage_url!r}: {exc}") from exc
        self.limiter = strategies.MovingWindowRateLimiter(self.storage)
        self.rate = rate

    def check(self, identity: str) -> None:
        for item in self.items:
            if not self.limiter.hit(item, "bastion", identity):
                reset = self.limiter.get_window_stats(item, "bastion", identity).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                raise RejectionError(
                    f"rate limit {self.rate} exceeded; retry in {retry} s",
                    status=429,
                    code="rate_limited",
                    layer=self.name,
                    headers={"Retry-After": str(retry)},
                )

    def reset(self) -> None:
        """Forget every count (tests and operators after a key rotation)."""
        self.storage.reset()
