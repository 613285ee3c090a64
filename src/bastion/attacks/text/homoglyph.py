"""Homoglyphs: letters replaced by look-alike characters from other scripts.

A person reads ``FRЕЕ`` (with Cyrillic ``Е``) as FREE; a filter that compares code points sees
a word it has never met. The look-alikes come from Unicode's confusables data (TR39, shipped
by ``confusable-homoglyphs``); only characters that NFKC does not already normalise away
(Cyrillic, Greek, ... rather than fullwidth or mathematical letters) are used first, and only
ones that ``bastion.defend.text.Sanitizer`` folds back to the letter they replace.

Budget: each substituted character is one Levenshtein edit.
"""

from __future__ import annotations

import random
import unicodedata
from typing import ClassVar

from bastion.attacks.params import Interval, Param
from bastion.attacks.registry import register
from bastion.attacks.text._tables import homoglyphs
from bastion.attacks.text._variants import distinct_variants
from bastion.attacks.text.base import TextAttack

__all__ = ["HomoglyphAttack"]


def _lookalikes(char: str) -> tuple[str, ...]:
    """Look-alikes of ``char`` that survive NFKC (the ones a naive filter keeps)."""
    found = homoglyphs(char)
    stable = tuple(g for g in found if unicodedata.normalize("NFKC", g) == g)
    return stable or found


@register
class HomoglyphAttack(TextAttack):
    """Unicode confusables (Cyrillic/Greek look-alikes) in place of letters and digits."""

    name = "text_homoglyph"
    version = "1.0.0"
    params: ClassVar = {
        **TextAttack.params,
        "chars_per_word": Param(Interval(int, 1, 8), 1, "characters replaced in each word"),
    }

    def _variants(self, word: str, rng: random.Random) -> list[str]:
        per_word = int(self.chars_per_word)

        def draw(w: str, r: random.Random) -> str | None:
            spots = [i for i, c in enumerate(w) if _lookalikes(c)]
            if not spots:
                return None
            chars = list(w)
            for i in r.sample(spots, min(per_word, len(spots))):
                chars[i] = r.choice(_lookalikes(chars[i]))
            return "".join(chars)

        return distinct_variants(word, [draw], rng, int(self.candidates))
