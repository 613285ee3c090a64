"""Punctuation or whitespace injected inside words (``fr.ee``, ``fr ee``, ``f-r-e-e``).

Readers skip over the separators; tokenisers split the word in two and character n-gram
models lose every n-gram that spans the gap. ``symbols`` picks punctuation, spaces or both.

Budget: each inserted character is one Levenshtein edit.
"""

from __future__ import annotations

import random
from typing import ClassVar

from bastion.attacks.params import Interval, OneOf, Param
from bastion.attacks.registry import register
from bastion.attacks.text._variants import distinct_variants
from bastion.attacks.text.base import TextAttack

__all__ = ["PunctuationAttack"]

_SYMBOLS = {"punctuation": ".-_*'", "whitespace": " ", "both": ".-_*' "}


@register
class PunctuationAttack(TextAttack):
    """Punctuation or spaces inserted between the letters of a word."""

    name = "text_punctuation"
    version = "1.0.0"
    params: ClassVar = {
        **TextAttack.params,
        "symbols": Param(OneOf(tuple(_SYMBOLS)), "punctuation", "what to insert"),
        "chars_per_word": Param(Interval(int, 1, 8), 1, "characters inserted in each word"),
    }

    def _variants(self, word: str, rng: random.Random) -> list[str]:
        per_word = int(self.chars_per_word)
        symbols = _SYMBOLS[self.symbols]

        def draw(w: str, r: random.Random) -> str | None:
            if len(w) < 2:
                return None
            gaps = sorted(r.sample(range(1, len(w)), min(per_word, len(w) - 1)), reverse=True)
            for gap in gaps:
                w = w[:gap] + r.choice(symbols) + w[gap:]
            return w

        return distinct_variants(word, [draw], rng, int(self.candidates))
