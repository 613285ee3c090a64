"""Leetspeak: letters written as digits that look like them (``FR33``, ``w1n``).

Only one digit per letter is used (``a→4 e→3 i→1 o→0 s→5 t→7``) and every word keeps at
least as many letters as leet digits, so that ``bastion.defend.text.Sanitizer`` can undo the
change exactly (it maps these digits back inside such words and leaves numbers alone).

Budget: each substituted character is one Levenshtein edit.
"""

from __future__ import annotations

import random
from typing import ClassVar

from bastion.attacks.params import Interval, Param
from bastion.attacks.registry import register
from bastion.attacks.text._tables import LEET, LEET_INVERSE
from bastion.attacks.text._variants import distinct_variants
from bastion.attacks.text.base import TextAttack

__all__ = ["LeetAttack"]


@register
class LeetAttack(TextAttack):
    """Leetspeak digits in place of letters, letters kept >= leet digits in each word."""

    name = "text_leet"
    version = "1.0.0"
    params: ClassVar = {
        **TextAttack.params,
        "chars_per_word": Param(Interval(int, 1, 8), 1, "letters replaced in each word"),
    }

    def _variants(self, word: str, rng: random.Random) -> list[str]:
        per_word = int(self.chars_per_word)

        def draw(w: str, r: random.Random) -> str | None:
            spots = [i for i, c in enumerate(w) if c.lower() in LEET]
            letters = sum(c.isalpha() for c in w)
            digits = sum(c in LEET_INVERSE for c in w)
            # keep letters >= leet digits, so the word stays a word to the sanitiser
            count = min(per_word, len(spots), (letters - digits) // 2)
            if count <= 0:
                return None
            chars = list(w)
            for i in r.sample(spots, count):
                chars[i] = LEET[chars[i].lower()]
            return "".join(chars)

        return distinct_variants(word, [draw], rng, int(self.candidates))
