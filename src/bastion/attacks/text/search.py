"""The search every text attack shares: which words to perturb, in what order, with which of
their variants — spending as few model queries as possible.

``greedy`` (default) follows DeepWordBug (Gao et al. 2018) and TextFooler (Jin et al. 2020):
rank words by how much changing them lowers the model's probability of the true label, then
perturb them in that order until the prediction flips. Two rankings:

* ``ranking="delete"`` — the classic leave-one-out score (the text without the word); then,
  word by word, try up to ``candidates`` variants on top of the changes accepted so far, keep
  the best if it helps, stop at success. One query per word to rank, up to ``candidates``
  per word to perturb.
* ``ranking="perturb"`` (default) — score each word by querying the text with the word's
  *first variant* in place. The ranking queries are then also candidate evaluations, and since
  score-based filters are close to additive over words, the changes that helped alone are
  applied together: Bastion tests prefixes of the ranked list of helpful changes with a
  doubling-then-bisection search (about ``2·log2(k)`` queries to find the shortest flipping
  prefix of ``k`` changes, instead of one query per word). Only if every helpful change
  together still fails does it refine word by word, in rank order, with the other variants
  (up to ``candidates`` per word) on top of the current text. With ``group_size`` g > 1,
  neighbouring words are probed g at a time (n/g ranking queries instead of n); a helpful
  group contributes all its words, in text order.

``random`` perturbs words in a random order with their first variant, keeping each change
and querying once per word until the prediction flips: the plain random-edit baseline.

Every candidate text is checked against the edit budget and the attack's own constraint
before it is queried; the query budget is enforced by the :class:`QueryCounter`, whose
refusal ends the search with the best text found so far.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from bastion.attacks.text._edits import EditBudget, word_spans
from bastion.attacks.text.base import QueryBudgetExhaustedError, QueryCounter

if TYPE_CHECKING:
    from bastion.attacks.text.base import TextAttack

__all__ = ["search"]


class _State:
    """One example under attack: its words, the best text so far and its score."""

    def __init__(
        self,
        attack: TextAttack,
        text: str,
        label: int,
        counter: QueryCounter,
        budget: EditBudget,
    ) -> None:
        self.attack = attack
        self.text = text
        self.label = label
        self.counter = counter
        self.budget = budget
        self.spans = word_spans(text)
        self.best_text = text
        self.best_score = 1.0
        self.success = False

    def render(self, changes: Mapping[int, str]) -> str:
        """The original text with word ``i`` replaced by ``changes[i]``."""
        out = self.text
        for i in sorted(changes, reverse=True):
            start, end = self.spans[i]
            out = out[:start] + changes[i] + out[end:]
        return out

    def allowed(self, candidate: str) -> bool:
        return self.admissible([candidate])[0]

    def admissible(self, candidates: list[str]) -> list[bool]:
        """Which candidates are new, inside the edit budget and pass the attack's constraint
        (checked for all of them at once, so a costly constraint can batch its work)."""
        inside = [c != self.text and self.budget.allows(c) for c in candidates]
        checked = [c for c, ok in zip(candidates, inside, strict=True) if ok]
        verdicts = iter(self.attack._admissible_many(self.text, checked) if checked else [])
        return [ok and next(verdicts) for ok in inside]

    def query(self, texts: list[str]) -> np.ndarray:
        """Scores (probability of the true label) of ``texts``; tracks the best and success.

        Only as many texts as the budget still allows are sent; the rest get score ``inf``.
        """
        if not texts:
            return np.empty(0)
        fresh = [t for t in dict.fromkeys(texts) if self.counter.cached(t) is None]
        if len(fresh) > self.counter.remaining:
            keep = set(fresh[: self.counter.remaining])
            texts_sent = [t for t in texts if self.counter.cached(t) is not None or t in keep]
        else:
            texts_sent = texts
        scores = np.full(len(texts), np.inf)
        if texts_sent:
            probs = self.counter(texts_sent)
            by_text = dict(zip(texts_sent, probs, strict=True))
            for k, text in enumerate(texts):
                row = by_text.get(text)
                if row is None:
                    continue
                scores[k] = row[self.label]
                flipped = int(np.argmax(row)) != self.label
                better = (flipped and not self.success) or (
                    flipped == self.success and row[self.label] < self.best_score
                )
                if better:
                    self.best_text, self.best_score, self.success = text, row[self.label], flipped
        if len(texts_sent) < len(texts):
            raise QueryBudgetExhaustedError("budget reached")
        return scores

    def flipped(self, text: str) -> bool:
        row = self.counter.cached(text)
        return row is not None and int(np.argmax(row)) != self.label


def search(
    attack: TextAttack,
    text: str,
    label: int,
    counter: QueryCounter,
    budget: EditBudget,
    rng: random.Random,
) -> tuple[str, int]:
    """``(adversarial text, clean prediction)`` for one example."""
    state = _State(attack, text, label, counter, budget)
    clean = counter([text])[0]
    prediction = int(np.argmax(clean))
    state.best_score = float(clean[label])
    if prediction != label:
        return text, prediction
    words = [i for i, (s, e) in enumerate(state.spans) if attack._eligible(text[s:e])]
    variants = {i: attack._variants(text[slice(*state.spans[i])], rng) for i in words}
    words = [i for i in words if variants[i]]
    try:
        if attack.search == "random":
            rng.shuffle(words)
            _random(state, words, variants)
        elif attack.ranking == "delete":
            _greedy_delete(state, words, variants, int(attack.candidates))
        else:
            _greedy_perturb(state, words, variants, int(attack.candidates), int(attack.group_size))
    except QueryBudgetExhaustedError:
        pass
    return state.best_text, prediction


def _random(state: _State, words: list[int], variants: dict[int, list[str]]) -> None:
    changes: dict[int, str] = {}
    for i in words:
        trial = {**changes, i: variants[i][0]}
        candidate = state.render(trial)
        if not state.allowed(candidate):
            continue
        changes = trial
        state.query([candidate])
        if state.success:
            return


def _greedy_delete(
    state: _State, words: list[int], variants: dict[int, list[str]], candidates: int
) -> None:
    deleted = [state.render({i: ""}) for i in words]
    base = state.best_score
    scores = state.query(deleted)
    # Deleting a word is only a probe (its text may leave the budget); it must not be kept.
    state.best_text, state.best_score, state.success = state.text, base, False
    order = [words[k] for k in np.argsort(-(base - scores), kind="stable")]
    _refine(state, order, variants, candidates, changes={}, score=base, first=0)


def _greedy_perturb(
    state: _State,
    words: list[int],
    variants: dict[int, list[str]],
    candidates: int,
    group_size: int,
) -> None:
    base = state.best_score
    # Probe groups of ``group_size`` neighbouring words at once (1: every word alone).
    groups = [words[k : k + group_size] for k in range(0, len(words), group_size)]
    rendered = [state.render({i: variants[i][0] for i in group}) for group in groups]
    keep = state.admissible(rendered)
    probes = [g for g, ok in zip(groups, keep, strict=True) if ok]
    texts = [t for t, ok in zip(rendered, keep, strict=True) if ok]
    scores = state.query(texts)
    if state.success:
        return
    gains = base - scores
    ranked = [probes[k] for k in np.argsort(-gains, kind="stable")]
    helpful = [i for k in np.argsort(-gains, kind="stable") if gains[k] > 0 for i in probes[k]]
    # The longest prefix of helpful changes (in rank order) that fits the edit budget.
    chosen: list[int] = []
    for i in helpful:
        if state.allowed(state.render({j: variants[j][0] for j in [*chosen, i]})):
            chosen.append(i)
    changes, score = _shortest_flipping_prefix(state, chosen, variants)
    if state.success:
        return
    probed = {i for group in probes for i in group}
    rest = [i for group in ranked for i in group if i not in changes]
    rest += [i for i in words if i not in probed]
    order = list(changes) + rest
    _refine(state, order, variants, candidates, changes=changes, score=score, first=1)


def _shortest_flipping_prefix(
    state: _State, chosen: list[int], variants: dict[int, list[str]]
) -> tuple[dict[int, str], float]:
    """Doubling, then bisection, over prefixes of ``chosen``; the best prefix and its score."""

    def text_of(k: int) -> str:
        return state.render({j: variants[j][0] for j in chosen[:k]})

    if len(chosen) <= 1:
        k = len(chosen)
        return {j: variants[j][0] for j in chosen[:k]}, _score(state, text_of(k))
    low, k = 1, 2  # the single best change alone was queried while ranking (and failed)
    while True:
        k = min(k, len(chosen))
        state.query([text_of(k)])
        if state.flipped(text_of(k)):
            break
        if k == len(chosen):
            return {j: variants[j][0] for j in chosen}, _score(state, text_of(k))
        low, k = k, 2 * k
    high = k
    while high - low > 1:
        middle = (low + high) // 2
        state.query([text_of(middle)])
        if state.flipped(text_of(middle)):
            high = middle
        else:
            low = middle
    state.best_text = text_of(high)
    state.best_score = _score(state, state.best_text)
    state.success = True
    return {j: variants[j][0] for j in chosen[:high]}, state.best_score


def _score(state: _State, text: str) -> float:
    row = state.counter.cached(text)
    return float(row[state.label]) if row is not None else state.best_score


def _refine(
    state: _State,
    order: list[int],
    variants: dict[int, list[str]],
    candidates: int,
    *,
    changes: dict[int, str],
    score: float,
    first: int,
) -> None:
    """Word by word in ``order``: try variants on top of ``changes``; keep the best that helps.

    ``first`` variants of each word already changed are skipped (they were tried).
    """
    for i in order:
        start = first if i in changes else 0
        tried = variants[i][start:candidates]
        rendered = [state.render({**changes, i: variant}) for variant in tried]
        keep = state.admissible(rendered)
        texts = [t for t, ok in zip(rendered, keep, strict=True) if ok]
        picks = [v for v, ok in zip(tried, keep, strict=True) if ok]
        if not texts:
            continue
        scores = state.query(texts)
        k = int(np.argmin(scores))
        if scores[k] < score:
            changes = {**changes, i: picks[k]}
            score = float(scores[k])
        if state.success:
            return
