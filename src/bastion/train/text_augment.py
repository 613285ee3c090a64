"""Adversarial data augmentation for text classifiers: the text channel's adversarial
training.

Text models are trained on discrete inputs, so instead of an inner gradient maximisation
each round attacks a sample of the training set with the given black-box attacks against
the *current* model, adds every successful adversarial text with its true label, and
retrains from scratch on the enlarged set (as in the adversarial-training rounds of Jin et
al. 2020 and DeepWordBug's retraining experiment). The model is anything with
``fit(texts, labels)`` and ``predict_proba`` — including a sanitised model, in which case the
attacks face the sanitiser too and the added texts are sanitised when fitted.

Budget: ``examples_per_round`` training examples are attacked per round (split evenly over
the attacks), and at most ``max_added`` adversarial texts are added in total.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bastion.attacks.text import TextAttack
from bastion.errors import TrainingError

__all__ = ["AugmentResult", "AugmentRound", "Trainable", "adversarial_augment"]


class Trainable(Protocol):
    def fit(self, texts: Sequence[str], labels: np.ndarray) -> Any: ...

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class AugmentRound:
    """What one round did."""

    round: int
    attacked: int
    successes: int
    added: int
    success_rate: float
    seconds: float


@dataclass(kw_only=True)
class AugmentResult:
    """The final model, the adversarial texts added (with labels) and the per-round log."""

    model: Trainable
    added_texts: list[str] = field(default_factory=list)
    added_labels: list[int] = field(default_factory=list)
    history: list[AugmentRound] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added_texts),
            "rounds": [vars(r) for r in self.history],
        }


def adversarial_augment(
    factory: Callable[[], Trainable],
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    attacks: Sequence[TextAttack],
    *,
    rounds: int = 2,
    examples_per_round: int = 400,
    max_added: int | None = None,
    attacked_classes: Sequence[int] | None = (1,),
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> AugmentResult:
    """Train ``factory()`` on the data, then ``rounds`` times attack, add, retrain."""
    items = [str(t) for t in texts]
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (len(items),):
        raise TrainingError(f"need one label per text: {len(items)} texts, {y.shape} labels")
    if rounds < 0 or examples_per_round < 1:
        raise TrainingError("rounds must be >= 0 and examples_per_round >= 1")
    if rounds and not attacks:
        raise TrainingError("adversarial augmentation needs at least one text attack")
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(np.isin(y, attacked_classes) if attacked_classes is not None else y >= 0)
    model = factory()
    model.fit(items, y)
    result = AugmentResult(model=model)
    seen = set(items)
    for r in range(rounds):
        start = time.perf_counter()
        if len(pool) == 0 or (max_added is not None and len(result.added_texts) >= max_added):
            break
        chosen = rng.choice(pool, size=min(examples_per_round, len(pool)), replace=False)
        attacked = successes = added = 0
        for k, attack in enumerate(attacks):
            part = chosen[k :: len(attacks)]
            run = attack.run(model, [items[i] for i in part], y[part])
            for i, outcome in zip(part, run.results, strict=True):
                attacked += not outcome.skipped
                if not outcome.success:
                    continue
                successes += 1
                full = max_added is not None and len(result.added_texts) >= max_added
                if outcome.adversarial in seen or full:
                    continue
                seen.add(outcome.adversarial)
                result.added_texts.append(outcome.adversarial)
                result.added_labels.append(int(y[i]))
                added += 1
        model = factory()
        model.fit(
            items + result.added_texts, np.concatenate([y, result.added_labels]).astype(np.int64)
        )
        result.model = model
        entry = AugmentRound(
            round=r + 1,
            attacked=attacked,
            successes=successes,
            added=added,
            success_rate=successes / attacked if attacked else 0.0,
            seconds=time.perf_counter() - start,
        )
        result.history.append(entry)
        if log is not None:
            log(
                f"augment round {entry.round}: {successes}/{attacked} attacks succeeded, "
                f"{added} texts added ({len(result.added_texts)} in total)"
            )
    return result
