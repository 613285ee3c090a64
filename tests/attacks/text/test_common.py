"""Checks every registered text attack must pass (the common-suite habit of the image attacks).

Budgets are measured here independently of the attacks' own bookkeeping: queries by the
filter recording every text it is asked about, edits by a plain dynamic-programming
Levenshtein distance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion import attacks
from bastion.attacks import Modality, Norm
from bastion.attacks.text import TextAttack
from bastion.errors import AttackError, BudgetViolation, ParameterError

from .conftest import KeywordFilter

#: the synonym attack loads a sentence-embedding model; it has its own test module
TEXT_ATTACKS = [n for n in attacks.names("text") if n != "text_synonym"]
SPAM = [
    "WIN a FREE prize now! Call to claim your cash",
    "Free entry: win cash, call now",
    "Congratulations you have won a prize call claim free",
]


def levenshtein(a: str, b: str) -> int:
    """Textbook DP edit distance (insert, delete, substitute: 1 each)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def build(name: str, **params: Any) -> TextAttack:
    attack = attacks.create(name, **params)
    assert isinstance(attack, TextAttack)
    return attack


@pytest.mark.parametrize("name", TEXT_ATTACKS)
def test_identity_in_manifest(name: str) -> None:
    entry = next(a for a in attacks.manifest()["attacks"] if a["name"] == name)
    assert entry["modality"] == Modality.TEXT.value
    assert entry["norm"] == Norm.EDIT.value
    assert entry["uses_gradients"] is False
    assert "max_queries" in entry["params"]


@pytest.mark.parametrize("name", TEXT_ATTACKS)
def test_succeeds_within_budgets_without_mutating(name: str, keyword_filter: KeywordFilter) -> None:
    texts = list(SPAM)
    before = list(texts)
    attack = build(name, max_queries=60, max_edit_fraction=0.3)
    run = attack.run(keyword_filter, texts, np.ones(len(texts), dtype=np.int64))
    assert texts == before
    assert [r.original for r in run.results] == before
    assert sum(r.success for r in run.results) >= 1, run.summary()
    for result in run.results:
        distance = levenshtein(result.original, result.adversarial)
        assert distance == result.char_edits
        assert distance <= math.floor(0.3 * len(result.original))
        assert result.queries <= 60
        if result.success:
            assert keyword_filter.predict_proba([result.adversarial]).argmax() == 0


@pytest.mark.parametrize("name", TEXT_ATTACKS)
def test_query_budget_is_exact_and_never_exceeded(name: str) -> None:
    for budget in (1, 2, 5, 17):
        for text in SPAM:
            model = KeywordFilter()
            run = build(name, max_queries=budget, max_edit_fraction=0.5).run(
                model, [text], np.array([1])
            )
            assert len(set(model.seen)) == len(model.seen), "a text was queried twice"
            assert len(model.seen) == run.results[0].queries <= budget


@pytest.mark.parametrize("name", TEXT_ATTACKS)
def test_reproducible_under_seed_and_position(name: str, keyword_filter: KeywordFilter) -> None:
    labels = np.ones(len(SPAM), dtype=np.int64)
    first = build(name, seed=3, max_queries=40)(keyword_filter, SPAM, labels)
    again = build(name, seed=3, max_queries=40)(keyword_filter, SPAM, labels)
    alone = build(name, seed=3, max_queries=40)(keyword_filter, SPAM[2:], labels[2:])
    assert first == again
    assert first[2:] == alone


@pytest.mark.parametrize("name", TEXT_ATTACKS)
def test_misclassified_inputs_are_skipped(name: str, keyword_filter: KeywordFilter) -> None:
    run = build(name).run(keyword_filter, ["see you at lunch"], np.array([1]))
    (result,) = run.results
    assert result.skipped
    assert not result.success
    assert result.adversarial == "see you at lunch"
    assert result.queries == 1


@pytest.mark.parametrize("name", TEXT_ATTACKS)
@pytest.mark.parametrize(
    ("param", "value"),
    [("max_queries", 0), ("max_queries", 2.5), ("max_edit_fraction", 0.0), ("candidates", 0)],
)
def test_bad_parameter_is_named(name: str, param: str, value: object) -> None:
    with pytest.raises(ParameterError, match=param):
        build(name, **{param: value})


@pytest.mark.parametrize("name", TEXT_ATTACKS)
def test_bad_inputs_get_clear_errors(name: str, keyword_filter: KeywordFilter) -> None:
    attack = build(name)
    with pytest.raises(AttackError, match="list of strings"):
        attack(keyword_filter, "free prize", np.array([1]))
    with pytest.raises(AttackError, match="labels must be 2 integers"):
        attack(keyword_filter, ["a", "b"], np.array([1]))
    with pytest.raises(AttackError, match="item 1 is int"):
        attack(keyword_filter, ["a", 3], np.array([1, 1]))  # type: ignore[list-item]
    with pytest.raises(AttackError, match="predict_proba"):
        attack(object(), ["a"], np.array([1]))  # type: ignore[arg-type]


def test_no_edit_budget_at_all_is_refused() -> None:
    with pytest.raises(ParameterError, match="max_edit_fraction"):
        build("text_char", max_edit_fraction=None, max_word_fraction=None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(TEXT_ATTACKS),
    words=st.lists(
        st.sampled_from(["free", "WIN", "prize", "cash", "call", "now", "hello", "Claim", "ok"]),
        min_size=2,
        max_size=12,
    ),
    punctuation=st.sampled_from([" ", ", ", "! ", " - "]),
    fraction=st.floats(0.02, 0.4),
    word_fraction=st.one_of(st.none(), st.floats(0.1, 0.6)),
    seed=st.integers(0, 2**16),
)
def test_every_perturbation_stays_within_its_edit_budget(
    name: str,
    words: list[str],
    punctuation: str,
    fraction: float,
    word_fraction: float | None,
    seed: int,
) -> None:
    text = punctuation.join(words)
    attack = build(
        name,
        seed=seed,
        max_queries=30,
        max_edit_fraction=fraction,
        max_word_fraction=word_fraction,
    )
    (result,) = attack.run(KeywordFilter(), [text], np.array([1])).results
    assert levenshtein(text, result.adversarial) <= math.floor(fraction * len(text))
    if word_fraction is not None:
        assert result.words_changed <= math.floor(word_fraction * len(words))


def test_budget_violation_is_raised_by_the_final_check(keyword_filter: KeywordFilter) -> None:
    """An attack whose search cheats (returns a text it never checked) is caught."""

    class Cheat(TextAttack):
        name = "cheat"
        version = "1.0.0"

        def _variants(self, word: str, rng: object) -> list[str]:
            return [word + "x" * 40]

        def _admissible_many(self, original: str, candidates: list[str]) -> list[bool]:
            return [True] * len(candidates)

    from bastion.attacks.text import _edits

    cheat = Cheat(max_edit_fraction=0.05)
    original = _edits.EditBudget.allows
    try:
        _edits.EditBudget.allows = lambda self, perturbed: True  # type: ignore[method-assign]
        with pytest.raises(BudgetViolation, match="exceed the budget"):
            cheat.run(keyword_filter, [SPAM[0]], np.array([1]))
    finally:
        _edits.EditBudget.allows = original  # type: ignore[method-assign]
