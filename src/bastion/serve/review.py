"""Handing flagged and abstained inputs to people: the server side of the review queue.

The server writes every input it flagged or abstained on *before* it answers, through a
:class:`ReviewSink` (the registry's review queue in production), so an acknowledged request
is never a lost review item. A request with one input gives one item keyed by its request
id; a batch gives one item per queued input, keyed ``<request id>/<index>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["ReviewEntry", "ReviewSink"]


@dataclass(frozen=True)
class ReviewEntry:
    """One queued input with what the server answered and why it was queued."""

    request_id: str
    model: str
    inputs: Any
    outputs: dict[str, Any]
    scores: dict[str, float]
    reasons: list[str]


class ReviewSink(Protocol):
    """Stores entries durably; raises a :class:`~bastion.errors.RegistryError` if it cannot."""

    def add(self, entries: Sequence[ReviewEntry]) -> None: ...
