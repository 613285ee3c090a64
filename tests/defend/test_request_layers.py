"""The request-stage layers: API key, body size, rate limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from bastion.defend.auth import ApiKeyCheck, extract_key
from bastion.defend.base import Gradient
from bastion.defend.ratelimit import RateLimit
from bastion.defend.size import BodySizeLimit
from bastion.errors import RejectionError, ServeError


class _Keys:
    def __init__(self, known: dict[str, str]) -> None:
        self.known = known

    def verify(self, token: str) -> str | None:
        return self.known.get(token)


def test_api_key_accepts_bearer_and_header_and_rejects_unknown() -> None:
    check = ApiKeyCheck(verifier=_Keys({"good": "k1"}), required=True)
    assert check.check({"authorization": "Bearer good"}) == "k1"
    assert check.check({"x-api-key": "good"}) == "k1"
    for headers in ({}, {"authorization": "Bearer bad"}, {"authorization": "Basic good"}):
        with pytest.raises(RejectionError) as info:
            check.check(headers)
        assert info.value.status == 401
        assert info.value.code == "unauthorized"
    assert ApiKeyCheck.gradient is Gradient.NONE


def test_optional_api_key_lets_anonymous_through_but_still_checks_given_keys() -> None:
    check = ApiKeyCheck(verifier=_Keys({"good": "k1"}), required=False)
    assert check.check({}) is None
    with pytest.raises(RejectionError):
        check.check({"x-api-key": "wrong"})
    assert extract_key({"authorization": "Bearer   "}) is None


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_body_size_checks_declared_length_and_streamed_bytes() -> None:
    limit = BodySizeLimit(max_bytes=10)
    limit.check_declared({"content-length": "10"})
    with pytest.raises(RejectionError) as info:
        limit.check_declared({"content-length": "11"})
    assert info.value.status == 413
    with pytest.raises(RejectionError) as info:
        limit.check_declared({"content-length": "ten"})
    assert info.value.status == 400
    assert asyncio.run(limit.read(_chunks(b"12345", b"67890"))) == b"1234567890"
    with pytest.raises(RejectionError) as info:  # a client that lies about its length
        asyncio.run(limit.read(_chunks(b"123456", b"78901")))
    assert info.value.code == "payload_too_large"


def test_rate_limit_is_exact_per_identity_and_sets_retry_after() -> None:
    limit = RateLimit(rate="5/minute")
    for _ in range(5):
        limit.check("a")
    with pytest.raises(RejectionError) as info:
        limit.check("a")
    assert info.value.status == 429
    assert 1 <= int(info.value.headers["Retry-After"]) <= 60
    limit.check("b")  # another key has its own budget
    limit.reset()
    limit.check("a")


def test_rate_limit_refuses_bad_settings() -> None:
    with pytest.raises(ServeError, match="not valid"):
        RateLimit(rate="lots")
    with pytest.raises(ServeError, match="storage"):
        RateLimit(rate="1/second", storage_url="nosuch://x")


def test_memory_rate_limit_prunes_inline_without_a_thread_per_request() -> None:
    import threading
    import time

    limit = RateLimit(rate="1000/second")
    before = threading.active_count()
    for _ in range(200):
        limit.check("a")
        time.sleep(0.0002)
    assert threading.active_count() <= before
    time.sleep(1.05)  # every entry has expired; the next hit prunes them
    limit.check("a")
    events = cast(Any, limit.storage).events
    assert sum(len(v) for v in events.values()) == 1
