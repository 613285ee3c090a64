"""Each word perturbation does what it says, at the edit cost the budget assumes."""

from __future__ import annotations

import random
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from bastion.attacks.text import _tables, char
from bastion.attacks.text._edits import words_touched
from bastion.attacks.text.homoglyph import HomoglyphAttack
from bastion.attacks.text.invisible import InvisibleAttack
from bastion.attacks.text.leet import LeetAttack
from bastion.attacks.text.punctuation import PunctuationAttack

from .test_common import levenshtein

WORDS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    min_size=2,
    max_size=12,
)


@given(word=WORDS, seed=st.integers(0, 10_000))
def test_character_typos_cost_what_they_claim(word: str, seed: int) -> None:
    rng = random.Random(seed)
    swapped = char.swap(word, rng)
    if swapped is not None:
        assert sorted(swapped) == sorted(word)
        assert levenshtein(word, swapped) == 2
    deleted = char.delete(word, rng)
    assert deleted is not None
    assert levenshtein(word, deleted) == 1
    inserted = char.insert(word, rng)
    assert inserted is not None
    assert levenshtein(word, inserted) == 1
    typo = char.keyboard(word, rng)
    assert typo is not None
    assert levenshtein(word, typo) == 1
    (i,) = [k for k in range(len(word)) if word[k] != typo[k]]
    assert typo[i].lower() in _tables.KEYBOARD[word[i].lower()]


def test_keyboard_neighbours_are_physical() -> None:
    assert set(_tables.KEYBOARD["g"]) == set("ftyhbv")
    assert "q" not in _tables.KEYBOARD["p"]


@given(word=WORDS, seed=st.integers(0, 10_000))
def test_visual_perturbations(word: str, seed: int) -> None:
    rng = random.Random(seed)
    for variant in HomoglyphAttack(chars_per_word=2)._variants(word, rng):
        assert len(variant) == len(word)
        assert levenshtein(word, variant) <= 2
        for a, b in zip(word, variant, strict=True):
            assert a == b or (ord(b) > 127 and _tables.fold_char(b) == a.casefold())
    for variant in LeetAttack(chars_per_word=3)._variants(word, rng):
        letters = sum(c.isalpha() for c in variant)
        assert letters >= sum(c in "431057" for c in variant)
        assert letters >= 1
        assert levenshtein(word, variant) <= 3
    for variant in InvisibleAttack()._variants(word, rng):
        extra = [c for c in variant if c not in word]
        assert len(variant) == len(word) + 1
        assert all(unicodedata.category(c) == "Cf" for c in extra)
        assert variant[0] == word[0]
        assert variant[-1] == word[-1]
    for variant in PunctuationAttack(symbols="whitespace")._variants(word, rng):
        assert variant.replace(" ", "") == word
        assert " " in variant.strip()


def test_homoglyphs_survive_nfkc_first() -> None:
    """A filter that only applies NFKC still sees the look-alike (Cyrillic, not fullwidth)."""
    rng = random.Random(0)
    (variant,) = HomoglyphAttack(candidates=1)._variants("e", rng)
    assert unicodedata.normalize("NFKC", variant) != "e"


def test_words_touched_counts_each_word_once() -> None:
    assert words_touched("free cash now", "frее cаsh now") == 2
    assert words_touched("free cash now", "free  cash now") == 1
    assert words_touched("free cash now", "free cash now") == 0
    assert words_touched("win big", "w1n b1g b1g") == 2
