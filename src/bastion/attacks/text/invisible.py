"""Zero-width and other invisible characters inside words (``FR\u200bEE``).

The text looks unchanged on screen, but a filter that tokenises or counts character n-grams
sees two fragments. The characters are Unicode format characters (category Cf): zero-width
space, (non-)joiner, word joiner, invisible separators, the byte-order mark and the soft
hyphen; ``bastion.defend.text.Sanitizer`` strips all of category Cf.

Budget: each inserted character is one Levenshtein edit.
"""

from __future__ import annotations

import random
from typing import ClassVar

from bastion.attacks.params import Interval, Param
from bastion.attacks.registry import register
from bastion.attacks.text._tables import INVISIBLE
from bastion.attacks.text._variants import distinct_variants
from bastion.attacks.text.base import TextAttack

__all__ = ["InvisibleAttack"]


@register
class InvisibleAttack(TextAttack):
    """Zero-width / invisible format characters inserted inside words."""

    name = "text_invisible"
    version = "1.0.0"
    params: ClassVar = {
        **TextAttack.params,
        "chars_per_word": Param(Interval(int, 1, 8), 1, "characters inserted in each word"),
    }

    def _variants(self, word: str, rng: random.Random) -> list[str]:
        per_word = int(self.chars_per_word)

        def draw(w: str, r: random.Random) -> str | None:
            if len(w) < 2:
                return None
            gaps = sorted(r.sample(range(1, len(w)), min(per_word, len(w) - 1)), reverse=True)
            for gap in gaps:
                w = w[:gap] + r.choice(INVISIBLE) + w[gap:]
            return w

        return distinct_variants(word, [draw], rng, int(self.candidates))
