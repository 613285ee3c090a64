"""The search: greedy by word importance beats random order, the prefix search finds a short
flipping change set, and the query counter is exact."""

from __future__ import annotations

import numpy as np
import pytest

from bastion import attacks
from bastion.attacks.text import QueryBudgetExhaustedError, QueryCounter, TextAttack
from bastion.errors import AttackError
from bastion.models.text import TfidfLogReg

from .conftest import KeywordFilter

MESSAGE = "hello there, you WIN a FREE prize today, please call to claim it"


def _attack(**params: object) -> TextAttack:
    attack = attacks.create("text_char", **params)
    assert isinstance(attack, TextAttack)
    return attack


def test_greedy_perturbs_only_the_words_that_matter(keyword_filter: KeywordFilter) -> None:
    (result,) = _attack(max_queries=100).run(keyword_filter, [MESSAGE], np.array([1])).results
    assert result.success
    kept = set(result.adversarial.split()) & set(MESSAGE.split())
    # the filler words are untouched: only keywords needed changing
    assert {"hello", "there,", "you", "today,", "please", "it"} <= kept


def test_greedy_needs_fewer_queries_than_random_order() -> None:
    texts = [MESSAGE, "free cash now, win big, call to claim the prize on the line"]
    greedy = _attack(max_queries=200, seed=1, max_edit_fraction=0.4).run(
        KeywordFilter(), texts, np.ones(2, dtype=int)
    )
    random = _attack(max_queries=200, seed=1, max_edit_fraction=0.4, search="random").run(
        KeywordFilter(), texts, np.ones(2, dtype=int)
    )
    assert all(r.success for r in greedy.results)
    assert sum(r.words_changed for r in greedy.results) < sum(
        r.words_changed for r in random.results
    )


@pytest.mark.parametrize("ranking", ["perturb", "delete"])
def test_both_rankings_evade_a_real_filter(
    ranking: str, spam_filter: TfidfLogReg, held_out_spam: list[str]
) -> None:
    run = _attack(ranking=ranking, edits_per_word=2, max_queries=150).run(
        spam_filter, held_out_spam, np.ones(len(held_out_spam), dtype=int)
    )
    summary = run.summary()
    assert summary["successes"] >= 3, summary
    for result in run.results:
        if result.success:
            assert spam_filter.predict_proba([result.adversarial]).argmax() == 0


def test_counter_caches_and_refuses_past_the_budget(keyword_filter: KeywordFilter) -> None:
    counter = QueryCounter(keyword_filter, 3)
    counter(["a", "b", "a"])
    assert counter.used == 2
    assert keyword_filter.seen == ["a", "b"]
    counter(["b"])
    assert counter.used == 2
    with pytest.raises(QueryBudgetExhaustedError):
        counter(["c", "d"])
    assert counter.used == 2
    assert "c" not in keyword_filter.seen
    counter(["c"])
    assert counter.remaining == 0


def test_counter_rejects_malformed_model_outputs() -> None:
    class Broken:
        def predict_proba(self, texts: list[str]) -> np.ndarray:
            return np.full((len(texts), 2), np.nan)

    class Short:
        def predict_proba(self, texts: list[str]) -> np.ndarray:
            return np.zeros((1, 2))

    with pytest.raises(AttackError, match="NaN"):
        QueryCounter(Broken(), 5)(["x"])
    with pytest.raises(AttackError, match="shape"):
        QueryCounter(Short(), 5)(["x", "y"])
