"""The text sanitiser undoes the visual attacks (round trip, property-based), is idempotent,
and the sanitised model trains and predicts on sanitised text."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.attacks.text import TextAttack
from bastion.attacks.text._edits import word_spans
from bastion.attacks.text.homoglyph import HomoglyphAttack
from bastion.attacks.text.invisible import InvisibleAttack
from bastion.attacks.text.leet import LeetAttack
from bastion.defend.text import SanitizedModel, Sanitizer
from bastion.errors import BastionError

SMS_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?'£&:-"
TEXTS = st.text(alphabet=SMS_ALPHABET, min_size=1, max_size=80)
SANITIZE = Sanitizer()


def perturb_every_word(attack: TextAttack, text: str, seed: int) -> str:
    """Apply the attack's first variant to every word: the most a search could change."""
    rng = random.Random(seed)
    out = text
    for start, end in reversed(word_spans(text)):
        variants = attack._variants(text[start:end], rng)
        if variants:
            out = out[:start] + variants[0] + out[end:]
    return out


@settings(max_examples=150, deadline=None)
@given(
    text=TEXTS,
    seed=st.integers(0, 2**20),
    attack=st.sampled_from(
        [
            HomoglyphAttack(chars_per_word=1),
            HomoglyphAttack(chars_per_word=4),
            InvisibleAttack(chars_per_word=3),
            LeetAttack(chars_per_word=1),
            LeetAttack(chars_per_word=8),
        ]
    ),
)
def test_sanitizer_undoes_homoglyph_zero_width_and_leet(
    text: str, seed: int, attack: TextAttack
) -> None:
    perturbed = perturb_every_word(attack, text, seed)
    assert SANITIZE.sanitize(perturbed) == SANITIZE.sanitize(text)


@settings(max_examples=150, deadline=None)
@given(text=st.text(min_size=0, max_size=60))
def test_sanitizer_is_idempotent_on_any_unicode(text: str) -> None:
    once = SANITIZE.sanitize(text)
    assert SANITIZE.sanitize(once) == once


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("FRЕЕ ρrize", "free prize"),  # Cyrillic Е, Greek ρ
        ("ｗｉｎ　ｃａｓｈ", "win cash"),  # fullwidth letters and space (NFKC)
        ("fr\u200bee\u2060 call", "free call"),
        ("W1N C45H n0w", "win cash now"),
        ("call 08712402972 or 2nite", "call 08712402972 or 2nite"),  # numbers stay numbers
        ("call 087124o2972 4u", "call 087124o2972 au"),  # a stray letter: still a number
        ("freeeeee!!!!", "free!!"),
        ("c.a.s.h  and   f-r-e-e", "cash and free"),
    ],
)
def test_sanitizer_examples(raw: str, clean: str) -> None:
    assert SANITIZE.sanitize(raw) == clean


def test_steps_can_be_switched_off() -> None:
    keep_case = Sanitizer(casefold=False, leetspeak=False)
    assert keep_case.sanitize("W1N ＦＲＥＥ") == "W1N FREE"
    assert Sanitizer.from_dict(keep_case.describe()) == keep_case
    with pytest.raises(BastionError, match="unknown sanitiser option"):
        Sanitizer.from_dict({"nfkc": True, "stem": True})
    with pytest.raises(BastionError, match="true/false"):
        Sanitizer.from_dict({"nfkc": "yes"})
    with pytest.raises(BastionError, match="list of texts"):
        SANITIZE("one string")


class Recorder:
    classes = ("ham", "spam")

    def __init__(self) -> None:
        self.fitted: list[str] = []
        self.asked: list[str] = []

    def fit(self, texts: list[str], labels: np.ndarray) -> Recorder:
        self.fitted = list(texts)
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.asked = list(texts)
        return np.tile([0.5, 0.5], (len(texts), 1))


def test_sanitized_model_sanitizes_training_and_serving_alike() -> None:
    inner = Recorder()
    model = SanitizedModel(inner).fit(["FRЕЕ", "hi"], np.array([1, 0]))
    model.predict_proba(["fr\u200bee"])
    assert inner.fitted == ["free", "hi"]
    assert inner.asked == ["free"]
    assert model.classes == ("ham", "spam")
