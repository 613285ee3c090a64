"""The word-level synonym attack with the offline sentence-embedding model.

Loading the model takes several seconds, so it happens once for this module.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bastion import attacks
from bastion.attacks.text import TextAttack
from bastion.attacks.text._encoder import Encoder, encoder

from .conftest import KeywordFilter

#: loading the sentence-embedding model takes 10-20 s on a 2-core machine
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> Encoder:
    return encoder()


def test_neighbours_come_from_the_offline_model(model: Encoder) -> None:
    near = model.neighbours("prize", 8, 0.3)
    assert "award" in near or "prizes" in near
    assert "prize" not in near
    assert model.neighbours("zzzqqq", 5, 0.0) == []


def test_sentence_similarity_orders_meanings(model: Encoder) -> None:
    base = "you have won a cash prize"
    assert model.similarity(base, "you have won a money prize") > model.similarity(
        base, "the weather is cold today"
    )


def test_swaps_words_within_the_word_budget_and_meaning(model: Encoder) -> None:
    texts = ["claim your free prize and cash award today", "win a prize, call to claim cash"]
    attack = attacks.create("text_synonym", max_queries=80, max_word_fraction=0.5)
    assert isinstance(attack, TextAttack)
    keyword_filter = KeywordFilter()
    run = attack.run(keyword_filter, texts, np.ones(2, dtype=np.int64))
    assert any(r.success for r in run.results), run.summary()
    for result in run.results:
        n_words = len(result.original.split())
        assert result.words_changed <= math.floor(0.5 * n_words)
        assert result.queries <= 80
        if result.adversarial != result.original:
            assert model.similarity(result.original, result.adversarial) >= 0.8
    assert len(keyword_filter.seen) == sum(r.queries for r in run.results)
