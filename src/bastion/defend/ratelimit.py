"""Per-key rate limiting with the ``limits`` package.

A moving window counts every request exactly (no fixed-window burst at the boundary), so
"100/minute" means no 101st request inside any sixty seconds. Storage is in memory by
default — per process, so with several workers each enforces the limit alone — and Redis by
URL (``redis://host:6379``) when workers or replicas must share one count. Gradient story:
``NONE``; it does limit the query budget of black-box attacks, which is its point.

``limits``' memory storage prunes expired entries from a ``threading.Timer`` that it
restarts 10 ms after the last one ended — on a server with requests more than 10 ms apart
that is a new OS thread per request, which ``bench/serve.py`` measured at about 2 ms of
latency per request on a busy 2-core machine. :class:`_PrunedInline` keeps the library's
storage and its exact window logic (a hit checks entry times itself and never relies on
pruning) but prunes inline, at most once a second, on the request path.
"""

from __future__ import annotations

import math
import time
from typing import ClassVar

from limits import RateLimitItem, parse_many, storage, strategies
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage

from bastion.defend.base import Gradient, Stage
from bastion.errors import RejectionError, ServeError

__all__ = ["RateLimit"]

_PRUNE_EVERY_S = 1.0


class _PrunedInline(MemoryStorage):
    """``limits``' memory storage, pruning expired entries inline instead of in a thread."""

    # no STORAGE_SCHEME here: the subclass must not replace "memory://" in limits' registry

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()
        self._last_prune = time.monotonic()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802  (the parent's private hook)
        now = time.monotonic()
        if now - self._last_prune >= _PRUNE_EVERY_S:
            self._last_prune = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


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
            self.storage = (
                _PrunedInline()
                if storage_url.rstrip("/") == "memory:"
                else storage.storage_from_string(storage_url)
            )
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
