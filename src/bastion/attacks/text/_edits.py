"""How far a perturbed text is from its original: the one measure that both the search (when
it accepts a candidate) and the final budget check use, so that the search can never accept
a text the check would reject.

Characters: the Levenshtein distance (insertions, deletions and substitutions of one code
point each; an adjacent swap counts 2), computed by ``rapidfuzz``. Words: the number of
original words that an optimal alignment of the two texts touches — an edit inside a word,
or an insertion right next to it, touches that word; an edit elsewhere in the space between
words touches none (the character measure still counts it). Words are maximal runs of
letters and digits (``[^\\W_]+``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

__all__ = ["WORD", "EditBudget", "char_edits", "word_spans", "words_touched"]

#: A word: a maximal run of Unicode letters and digits.
WORD = re.compile(r"[^\W_]+")


def word_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every word of ``text``, in order."""
    return [m.span() for m in WORD.finditer(text)]


def char_edits(original: str, perturbed: str) -> int:
    """Levenshtein distance in code points."""
    return int(Levenshtein.distance(original, perturbed))


def words_touched(original: str, perturbed: str, spans: list[tuple[int, int]] | None = None) -> int:
    """How many words of ``original`` an optimal edit script from it to ``perturbed`` touches."""
    if original == perturbed:
        return 0
    spans = word_spans(original) if spans is None else spans
    if not spans:
        return 0
    touched: set[int] = set()
    for op in Levenshtein.opcodes(original, perturbed):
        tag, i1, i2 = str(op.tag), int(op.src_start), int(op.src_end)
        if tag == "equal":
            continue
        # The original characters [i1, i2) change; an insertion changes the gap at i1.
        for w, (start, end) in enumerate(spans):
            if start > i2:
                break
            hit = start <= i1 <= end if tag == "insert" else (i1 < end and i2 > start)
            if hit:
                touched.add(w)
    return len(touched)


@dataclass(frozen=True, kw_only=True)
class EditBudget:
    """The most a perturbed text may differ from ``original``; ``None`` means unlimited.

    ``max_chars`` is ``floor(max_edit_fraction * len(original))`` and ``max_words``
    ``floor(max_word_fraction * number of words)``: fractions of the original's size.
    """

    original: str
    max_chars: int | None
    max_words: int | None

    @classmethod
    def of(
        cls, original: str, max_edit_fraction: float | None, max_word_fraction: float | None
    ) -> EditBudget:
        chars = None if max_edit_fraction is None else math.floor(max_edit_fraction * len(original))
        n_words = len(word_spans(original))
        words = None if max_word_fraction is None else math.floor(max_word_fraction * n_words)
        return cls(original=original, max_chars=chars, max_words=words)

    def measure(self, perturbed: str) -> tuple[int, int]:
        """``(character edits, words touched)`` of ``perturbed``."""
        return char_edits(self.original, perturbed), words_touched(self.original, perturbed)

    def allows(self, perturbed: str) -> bool:
        if self.max_chars is not None and char_edits(self.original, perturbed) > self.max_chars:
            return False
        return self.max_words is None or words_touched(self.original, perturbed) <= self.max_words
