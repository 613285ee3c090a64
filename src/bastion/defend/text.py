"""The text sanitiser: one canonical form for every text, applied the same way when the filter
is trained and when it serves, so that visual tricks stop paying off.

Steps, in order (each can be switched off):

1. Unicode NFKC — fullwidth and mathematical letters, ligatures and the like become plain;
2. strip invisible characters — every format character (category Cf: zero-width space,
   joiners, word joiner, BOM, soft hyphen ...);
3. case folding;
4. confusable folding — look-alike letters from other scripts (Cyrillic ``а``, Greek ``ο``
   ...) become the ASCII letter they imitate (Unicode TR39 data, the same table the
   homoglyph attack draws from: :mod:`bastion.attacks.text._tables`);
5. leetspeak — inside a word with at least as many letters as leet digits, ``4 3 1 0 5 7``
   become ``a e i o s t`` (``FR33`` → ``free``); numbers, even with a stray letter
   (``087124o2972``), are left alone — otherwise one typo could turn a whole phone number
   into letters and hand the attacker a large change of features for one edit;
6. punctuation between letters (``fr.ee``, ``c-a-s-h``) is removed;
7. runs of three or more equal characters collapse to two (``freeeee`` → ``free``);
8. runs of whitespace become one space; leading and trailing space go.

It is a deterministic function of its input and idempotent (sanitising twice changes nothing),
so a homoglyph, zero-width or leetspeak perturbation ``t'`` of ``t`` has
``sanitize(t') == sanitize(t)`` — the round trip the tests check.

Gradient story: text models have no input gradients; attacks on a sanitised filter are
black-box (they query the whole :class:`SanitizedModel`), so the sanitiser is attacked, not
bypassed, by the evaluation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bastion.attacks.text import TextModel
from bastion.attacks.text._tables import LEET_INVERSE, fold_table
from bastion.errors import BastionError

__all__ = ["SanitizedModel", "Sanitizer"]

_WORD = re.compile(r"[^\W_]+")
_LETTER = re.compile(r"[^\W\d_]")
_INNER_PUNCT = re.compile(r"(?<=[^\W\d_])[.\-_*'·•,](?=[^\W\d_])")
_REPEAT = re.compile(r"(.)\1{2,}", re.DOTALL)
_SPACE = re.compile(r"\s+")
_LEET = str.maketrans(LEET_INVERSE)


def _leet_word(match: re.Match[str]) -> str:
    word = match.group(0)
    letters = len(_LETTER.findall(word))
    digits = sum(c in LEET_INVERSE for c in word)
    return word.translate(_LEET) if letters and letters >= digits else word


@dataclass(frozen=True, kw_only=True)
class Sanitizer:
    """Text -> canonical text (see the module docstring); all steps on by default."""

    nfkc: bool = True
    strip_invisible: bool = True
    casefold: bool = True
    fold_confusables: bool = True
    leetspeak: bool = True
    inner_punctuation: bool = True
    collapse_repeats: bool = True
    collapse_whitespace: bool = True

    def sanitize(self, text: str) -> str:
        if not isinstance(text, str):
            raise BastionError(f"the sanitiser takes str; got {type(text).__name__}")
        if self.nfkc:
            text = unicodedata.normalize("NFKC", text)
        if self.strip_invisible:
            text = "".join(c for c in text if unicodedata.category(c) != "Cf")
        if self.casefold:
            text = text.casefold()
        if self.fold_confusables:
            table = fold_table()
            text = "".join(table.get(c, c) for c in text)
        if self.leetspeak:
            text = _WORD.sub(_leet_word, text)
        if self.inner_punctuation:
            text = _INNER_PUNCT.sub("", text)
        if self.collapse_repeats:
            text = _REPEAT.sub(r"\1\1", text)
        if self.collapse_whitespace:
            text = _SPACE.sub(" ", text).strip()
        return text

    def __call__(self, texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise BastionError("the sanitiser takes a list of texts, not one string")
        return [self.sanitize(t) for t in texts]

    def describe(self) -> dict[str, Any]:
        return {"layer": "text_sanitizer", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sanitizer:
        """The sanitiser :meth:`describe` described (unknown keys are an error)."""
        fields = {k: v for k, v in data.items() if k != "layer"}
        unknown = sorted(set(fields) - set(cls.__dataclass_fields__))
        if unknown:
            raise BastionError(f"unknown sanitiser option(s): {', '.join(unknown)}")
        bad = sorted(k for k, v in fields.items() if not isinstance(v, bool))
        if bad:
            raise BastionError(f"sanitiser options must be true/false: {', '.join(bad)}")
        return cls(**fields)


class SanitizedModel:
    """A text model behind a sanitiser: training and prediction both see sanitised text.

    ``fit`` is offered when the wrapped model has one, so the same object is trained and
    served (the sanitiser cannot drift between the two).
    """

    def __init__(self, model: TextModel, sanitizer: Sanitizer | None = None) -> None:
        self.model = model
        self.sanitizer = sanitizer if sanitizer is not None else Sanitizer()
        self.classes: tuple[str, ...] = tuple(getattr(model, "classes", ()))

    def fit(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> SanitizedModel:
        fit = getattr(self.model, "fit", None)
        if not callable(fit):
            raise BastionError(f"{type(self.model).__name__} cannot be trained (no fit method)")
        fit(self.sanitizer(list(texts)), labels)
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.model.predict_proba(self.sanitizer(texts))
