"""Character-level typos: swap, delete, insert, keyboard-neighbour substitution.

DeepWordBug's perturbations (Gao et al. 2018, "Black-box generation of adversarial text
sequences to evade deep learning classifiers"): small edits that keep a word readable to a
person but change the character n-grams or tokens a filter keys on. ``operation`` picks one
kind or ``"mixed"`` (the four in turn, as DeepWordBug's composite transformation).

Budget: Levenshtein edits over the whole text (``max_edit_fraction`` of its characters; a swap
of two neighbours costs 2), and optionally the fraction of words changed.

>>> attack = CharAttack(operation="swap", max_queries=100)
>>> adversarial = attack(model, ["WIN a FREE prize now"], [1])  # doctest: +SKIP
"""

from __future__ import annotations

import random
import string
from typing import ClassVar

from bastion.attacks.params import Interval, OneOf, Param
from bastion.attacks.registry import register
from bastion.attacks.text._tables import KEYBOARD
from bastion.attacks.text._variants import Draw, distinct_variants
from bastion.attacks.text.base import TextAttack

__all__ = ["CharAttack"]


def swap(word: str, rng: random.Random) -> str | None:
    """Swap two neighbouring, different characters."""
    spots = [i for i in range(len(word) - 1) if word[i] != word[i + 1]]
    if not spots:
        return None
    i = rng.choice(spots)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def delete(word: str, rng: random.Random) -> str | None:
    """Delete one character (never the only one)."""
    if len(word) < 2:
        return None
    i = rng.randrange(len(word))
    return word[:i] + word[i + 1 :]


def insert(word: str, rng: random.Random) -> str | None:
    """Insert a random letter, in the case of its neighbour, anywhere in the word."""
    i = rng.randrange(len(word) + 1)
    letter = rng.choice(string.ascii_lowercase)
    neighbour = word[min(i, len(word) - 1)]
    if neighbour.isupper():
        letter = letter.upper()
    return word[:i] + letter + word[i:]


def keyboard(word: str, rng: random.Random) -> str | None:
    """Replace one letter or digit by a neighbouring key (a fat-finger typo)."""
    spots = [i for i, c in enumerate(word) if c.lower() in KEYBOARD]
    if not spots:
        return None
    i = rng.choice(spots)
    near = rng.choice(KEYBOARD[word[i].lower()])
    if word[i].isupper():
        near = near.upper()
    return word[:i] + near + word[i + 1 :]


def _repeat(draw: Draw, times: int) -> Draw:
    """``draw`` applied ``times`` times in a row (each on the previous result)."""

    def repeated(word: str, rng: random.Random) -> str | None:
        out: str | None = word
        for _ in range(times):
            out = draw(out, rng) if out is not None else None
        return out

    return repeated


_OPERATIONS: dict[str, tuple[Draw, ...]] = {
    "swap": (swap,),
    "delete": (delete,),
    "insert": (insert,),
    "keyboard": (keyboard,),
    "mixed": (swap, keyboard, delete, insert),
}


@register
class CharAttack(TextAttack):
    """Character typos (swap, delete, insert, keyboard neighbour), greedy by word importance."""

    name = "text_char"
    version = "1.0.0"
    params: ClassVar = {
        **TextAttack.params,
        "operation": Param(OneOf(tuple(_OPERATIONS)), "mixed", "which typo to make"),
        "edits_per_word": Param(
            Interval(int, 1, 8), 1, "typos per word, at most (one per 3 characters)"
        ),
    }

    def _variants(self, word: str, rng: random.Random) -> list[str]:
        draws = list(_OPERATIONS[self.operation])
        rng.shuffle(draws)
        edits = max(1, min(int(self.edits_per_word), len(word) // 3))
        if edits > 1:
            draws = [_repeat(draw, edits) for draw in draws]
        return distinct_variants(word, draws, rng, int(self.candidates))
