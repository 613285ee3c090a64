"""Fixtures for the text attacks: a transparent keyword filter whose every query is recorded,
and a real TF-IDF spam filter trained on a stratified slice of the SMS Spam Collection."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bastion.data.sms_spam import read_messages
from bastion.models.text import TfidfLogReg

SPAMMY = {"free": 2.0, "win": 1.5, "prize": 1.5, "cash": 1.2, "call": 1.0, "claim": 1.0, "now": 0.6}
_WORD = re.compile(r"[a-z]+")


class KeywordFilter:
    """P(spam) = sigmoid(sum of keyword weights - 1.5) over exact lower-case word matches.

    Every text it is asked about is appended to ``seen``, so tests can count queries
    independently of the attack's own bookkeeping.
    """

    classes = ("ham", "spam")

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        scores = np.array(
            [sum(SPAMMY.get(w, 0.0) for w in _WORD.findall(t.lower())) - 1.5 for t in texts]
        )
        spam = 1.0 / (1.0 + np.exp(-scores))
        return np.stack([1.0 - spam, spam], axis=1)


@pytest.fixture
def keyword_filter() -> KeywordFilter:
    return KeywordFilter()


@pytest.fixture(scope="session")
def sms(shared_data: Path) -> tuple[list[str], np.ndarray]:
    return read_messages(shared_data / "sms_spam")


@pytest.fixture(scope="session")
def spam_filter(sms: tuple[list[str], np.ndarray]) -> TfidfLogReg:
    """TF-IDF + logistic regression on every third message (about 1,860), fixed seed."""
    texts, labels = sms
    return TfidfLogReg(min_df=1).fit(texts[::3], labels[::3])


@pytest.fixture(scope="session")
def held_out_spam(sms: tuple[list[str], np.ndarray]) -> list[str]:
    """Twenty spam messages the filter did not see in training."""
    texts, labels = sms
    return [t for i, (t, y) in enumerate(zip(texts, labels, strict=True)) if y == 1 and i % 3][:20]
