"""The text attack base: it owns the plumbing, so each text attack module holds only how it
perturbs one word.

Text attacks are black-box and score-based. They run against anything that offers
``predict_proba(list[str]) -> ndarray (N, classes)`` — a scikit-learn pipeline, a wrapped
PyTorch model, a remote filter — and the base class guarantees for every attack:

* **an exact, per-example query budget**: every call goes through a :class:`QueryCounter`
  that counts each distinct text sent to the model (repeats are answered from its cache, as
  TextAttack does) and refuses any call that would pass ``max_queries``; the search stops
  there and keeps its best text so far;
* **an edit budget** checked with the same measure (:mod:`bastion.attacks.text._edits`) when a
  candidate is accepted and again on the final result, which raises
  :class:`~bastion.errors.BudgetViolation` if anything slipped through;
* **reproducibility**: all randomness comes from a generator seeded by ``seed`` and the text
  itself, so the same text gets the same perturbation wherever it sits in a batch;
* **no mutation**: inputs are read, never written.

``attack(model, texts, labels) -> list[str]`` returns the adversarial texts;
``attack.run(...)`` returns a :class:`TextAttackRun` with per-example statistics (queries
used, success, character and word edit fractions).
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from bastion.attacks.base import Attack, Modality, Norm
from bastion.attacks.params import Boolean, Interval, OneOf, Optional, Param
from bastion.attacks.text._edits import EditBudget, word_spans
from bastion.attacks.text._tables import STOPWORDS
from bastion.errors import AttackError, BudgetViolation, ParameterError

__all__ = [
    "QueryBudgetExhaustedError",
    "QueryCounter",
    "TextAttack",
    "TextAttackResult",
    "TextAttackRun",
    "TextModel",
]


@runtime_checkable
class TextModel(Protocol):
    """A classifier of strings: class probabilities, one row per text."""

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...


class QueryBudgetExhaustedError(AttackError):
    """A query would pass the per-example budget; the search stops with its best so far."""


class QueryCounter:
    """Counts the texts sent to ``model.predict_proba`` for one example; never passes ``budget``.

    Each distinct text costs one query the first time; repeats are served from a cache. A call
    whose new texts would exceed the budget raises :class:`QueryBudgetExhaustedError` *before*
    anything reaches the model.
    """

    def __init__(self, model: TextModel, budget: int, *, owner: str = "attack") -> None:
        self._model = model
        self._owner = owner
        self.budget = budget
        self.used = 0
        self._cache: dict[str, np.ndarray] = {}

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def cached(self, text: str) -> np.ndarray | None:
        """The probabilities already bought for ``text``, if any (costs nothing)."""
        return self._cache.get(text)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if len(new) > self.remaining:
            raise QueryBudgetExhaustedError(
                f"{self._owner}: {len(new)} more queries would pass the budget of {self.budget}"
            )
        if new:
            probs = np.asarray(self._model.predict_proba(new), dtype=np.float64)
            if probs.ndim != 2 or probs.shape[0] != len(new) or probs.shape[1] < 2:
                raise AttackError(
                    f"{self._owner}: predict_proba must return shape ({len(new)}, classes>=2) "
                    f"for {len(new)} texts; got {probs.shape}"
                )
            if not np.isfinite(probs).all():
                raise AttackError(f"{self._owner}: predict_proba returned NaN or inf")
            self.used += len(new)
            for text, row in zip(new, probs, strict=True):
                self._cache[text] = row
        return np.stack([self._cache[t] for t in texts]) if texts else np.empty((0, 0))


@dataclass(frozen=True, kw_only=True)
class TextAttackResult:
    """What happened to one example."""

    original: str
    adversarial: str
    label: int
    original_prediction: int
    prediction: int
    #: the example was classified correctly and the attack made the model misclassify it
    success: bool
    #: the model already misclassified the clean text, so nothing was attacked
    skipped: bool
    queries: int
    char_edits: int
    edit_fraction: float
    words_changed: int
    word_fraction: float


@dataclass(frozen=True, kw_only=True)
class TextAttackRun:
    """The results of one attack over a list of texts, with the attack's identity."""

    attack: dict[str, Any]
    results: list[TextAttackResult] = field(default_factory=list)

    @property
    def adversarial(self) -> list[str]:
        return [r.adversarial for r in self.results]

    def summary(self) -> dict[str, float | int]:
        """Success rate among attacked (correctly classified) examples; costs per success."""
        attacked = [r for r in self.results if not r.skipped]
        wins = [r for r in attacked if r.success]
        return {
            "examples": len(self.results),
            "attacked": len(attacked),
            "successes": len(wins),
            "success_rate": len(wins) / len(attacked) if attacked else 0.0,
            "mean_queries": float(np.mean([r.queries for r in attacked])) if attacked else 0.0,
            "mean_queries_per_success": float(np.mean([r.queries for r in wins])) if wins else 0.0,
            "mean_edit_fraction_per_success": (
                float(np.mean([r.edit_fraction for r in wins])) if wins else 0.0
            ),
            "mean_word_fraction_per_success": (
                float(np.mean([r.word_fraction for r in wins])) if wins else 0.0
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "summary": self.summary(),
            "results": [asdict(r) for r in self.results],
        }


_SEARCHES = ("greedy", "random")
_RANKINGS = ("perturb", "delete")


class TextAttack(Attack):
    """Base of black-box attacks on lists of strings with a query and an edit budget.

    Subclasses define :meth:`_variants` (ways to perturb one word, most promising first) and
    may define :meth:`_admissible` (a constraint on a whole candidate text, e.g. semantic
    similarity). The search (:mod:`bastion.attacks.text.search`) does the rest.
    """

    modality = Modality.TEXT
    uses_gradients = False
    cost_hint = "queries"
    params: ClassVar = {
        **Attack.params,
        "max_queries": Param(Interval(int, 1, None), 200, "model queries per example, at most"),
        "max_edit_fraction": Param(
            Optional(Interval(float, 0, 1, "right")),
            0.2,
            "Levenshtein edits / characters of the original; None: no limit",
        ),
        "max_word_fraction": Param(
            Optional(Interval(float, 0, 1, "right")),
            None,
            "words changed / words of the original; None: no limit",
        ),
        "search": Param(OneOf(_SEARCHES), "greedy", "greedy by word importance, or random order"),
        "ranking": Param(
            OneOf(_RANKINGS),
            "perturb",
            "word importance from perturbing each word (its first variant) or deleting it",
        ),
        "candidates": Param(Interval(int, 1, 32), 4, "variants tried per word, at most"),
        "group_size": Param(
            Interval(int, 1, 16),
            1,
            "ranking='perturb': neighbouring words probed together (fewer ranking queries)",
        ),
        "skip_stopwords": Param(Boolean(), True, "leave English function words alone"),
    }

    def _check(self) -> None:
        if self.max_edit_fraction is None and self.max_word_fraction is None:
            raise ParameterError(
                self.name,
                "max_edit_fraction",
                "a float in (0, 1] when max_word_fraction is None (some edit budget is needed)",
                None,
            )

    @property
    def norm(self) -> Norm:
        return Norm.EDIT

    @property
    def budget(self) -> float | None:
        value = self.max_edit_fraction
        return float(value) if value is not None else float(self.max_word_fraction)

    def cost(self) -> float:
        return float(self.max_queries)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["budget_unit"] = "characters" if self.max_edit_fraction is not None else "words"
        return info

    # -- what subclasses define ----------------------------------------------------------

    @abstractmethod
    def _variants(self, word: str, rng: random.Random) -> list[str]:
        """Perturbed forms of ``word``, most promising first, none equal to ``word``."""

    def _admissible(self, original: str, candidate: str) -> bool:
        """Whether ``candidate`` (a whole text) may be sent to the model. Default: always."""
        return True

    def _admissible_many(self, original: str, candidates: list[str]) -> list[bool]:
        """:meth:`_admissible` for several candidates (override to batch a costly check)."""
        return [self._admissible(original, c) for c in candidates]

    def _eligible(self, word: str) -> bool:
        """Whether the search may perturb ``word``."""
        return not (self.skip_stopwords and word.casefold() in STOPWORDS)

    def _prepare(self, texts: list[str]) -> None:
        """Hook run once per call before the search (e.g. to embed all texts at once)."""

    # -- the call ------------------------------------------------------------------------

    def __call__(self, model: TextModel, texts: Sequence[str], labels: Any) -> list[str]:  # type: ignore[override]
        """The adversarial texts, in input order (unattacked or failed ones: best effort)."""
        return self.run(model, texts, labels).adversarial

    def run(self, model: TextModel, texts: Sequence[str], labels: Any) -> TextAttackRun:
        """Attack every text; per-example results with queries, success and edit sizes."""
        from bastion.attacks.text.search import search  # the search uses this module

        items, ys = self._check_inputs(model, texts, labels)
        self._prepare(items)
        results = []
        for text, label in zip(items, ys, strict=True):
            rng = random.Random(f"{self.seed}\x1f{text}")
            counter = QueryCounter(model, int(self.max_queries), owner=self.name)
            budget = EditBudget.of(text, self.max_edit_fraction, self.max_word_fraction)
            outcome = search(self, text, int(label), counter, budget, rng)
            result = self._result(text, int(label), outcome, counter, budget)
            results.append(result)
        return TextAttackRun(attack=self.describe(), results=results)

    def _check_inputs(
        self, model: TextModel, texts: Sequence[str], labels: Any
    ) -> tuple[list[str], list[int]]:
        if not callable(getattr(model, "predict_proba", None)):
            raise AttackError(
                f"{self.name}: the model must offer predict_proba(list[str]); "
                f"got {type(model).__name__}"
            )
        if isinstance(texts, str):
            raise AttackError(f"{self.name}: texts must be a list of strings, not one string")
        items = list(texts)
        bad = [i for i, t in enumerate(items) if not isinstance(t, str)]
        if bad:
            raise AttackError(
                f"{self.name}: texts must be strings; "
                f"item {bad[0]} is {type(items[bad[0]]).__name__}"
            )
        array = np.asarray(labels)
        if array.shape != (len(items),) or (len(items) and array.dtype.kind not in "iu"):
            raise AttackError(
                f"{self.name}: labels must be {len(items)} integers (one per text); "
                f"got shape {array.shape} of {array.dtype}"
            )
        if len(items) and int(array.min()) < 0:
            raise AttackError(f"{self.name}: labels must be non-negative class indices")
        return items, [int(v) for v in array]

    def _result(
        self,
        text: str,
        label: int,
        outcome: tuple[str, int],
        counter: QueryCounter,
        budget: EditBudget,
    ) -> TextAttackResult:
        adversarial, original_prediction = outcome
        if counter.used > counter.budget:  # the counter forbids this; a last line of defence
            raise BudgetViolation(f"{self.name}: {counter.used} queries > {counter.budget}")
        chars, words = budget.measure(adversarial)
        if (budget.max_chars is not None and chars > budget.max_chars) or (
            budget.max_words is not None and words > budget.max_words
        ):
            raise BudgetViolation(
                f"{self.name}: {chars} character edits / {words} words changed exceed the "
                f"budget of {budget.max_chars} / {budget.max_words} for {text!r}"
            )
        skipped = original_prediction != label
        if adversarial == text:
            prediction = original_prediction
        else:
            probs = counter.cached(adversarial)
            if probs is None:
                raise AttackError(f"{self.name}: the search returned a text it never queried")
            prediction = int(np.argmax(probs))
        n_words = len(word_spans(text))
        return TextAttackResult(
            original=text,
            adversarial=adversarial,
            label=label,
            original_prediction=original_prediction,
            prediction=prediction,
            success=not skipped and prediction != label,
            skipped=skipped,
            queries=counter.used,
            char_edits=chars,
            edit_fraction=chars / len(text) if text else 0.0,
            words_changed=words,
            word_fraction=words / n_words if n_words else 0.0,
        )
