"""API-key check: the first line of defence is knowing who is asking.

Keys are stored hashed (by whoever implements :class:`KeyVerifier`; the registry does), so a
leaked database does not leak usable keys. The key travels in ``Authorization: Bearer <key>``
or ``X-API-Key: <key>``. Gradient story: ``NONE`` — the check never touches input values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from bastion.defend.base import Gradient, Stage
from bastion.errors import RejectionError

__all__ = ["ApiKeyCheck", "KeyVerifier", "extract_key"]


class KeyVerifier(Protocol):
    """Resolves a presented key to its public key id, or ``None`` when unknown or revoked."""

    def verify(self, token: str) -> str | None: ...


def extract_key(headers: Mapping[str, str]) -> str | None:
    """The presented key from ``Authorization: Bearer`` or ``X-API-Key``; ``None`` if absent."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class ApiKeyCheck:
    """401 for a missing (when ``required``), unknown or revoked key; returns the key id."""

    name: ClassVar[str] = "api_key"
    stage: ClassVar[Stage] = Stage.REQUEST
    gradient: ClassVar[Gradient] = Gradient.NONE

    def __init__(self, *, verifier: KeyVerifier, required: bool = True) -> None:
        self.verifier = verifier
        self.required = required

    def check(self, headers: Mapping[str, str]) -> str | None:
        token = extract_key(headers)
        if token is None:
            if self.required:
                raise self._reject("an API key is required (Authorization: Bearer <key>)")
            return None
        key_id = self.verifier.verify(token)
        if key_id is None:
            raise self._reject("the API key is unknown or revoked")
        return key_id

    def _reject(self, message: str) -> RejectionError:
        return RejectionError(
            message,
            status=401,
            code="unauthorized",
            layer=self.name,
            headers={"WWW-Authenticate": "Bearer"},
        )
