"""Drawing distinct random variants of a word: the one loop every perturbation shares."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

__all__ = ["Draw", "distinct_variants"]

#: One random perturbation of a word, or ``None`` when the word admits none.
Draw = Callable[[str, random.Random], "str | None"]


def distinct_variants(
    word: str, draws: Sequence[Draw], rng: random.Random, limit: int, *, tries: int = 4
) -> list[str]:
    """Up to ``limit`` distinct variants of ``word`` (none equal to it), taking the ``draws``
    in turn; gives up after ``tries * limit`` draws (short words have few variants)."""
    found: list[str] = []
    for attempt in range(tries * limit):
        if len(found) >= limit:
            break
        variant = draws[attempt % len(draws)](word, rng)
        if variant is not None and variant != word and variant not in found:
            found.append(variant)
    return found
