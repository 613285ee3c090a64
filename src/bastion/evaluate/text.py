"""Evaluating a text classifier against the text channel of a threat model.

Two views of one set of attack runs:

* the standard :class:`~bastion.evaluate.record.EvaluationRecord` that reports, the gate and
  the registry read for every channel (clean and worst-case accuracy, per-attack robust
  accuracy, ECE, per-class accuracy, latency, per-sample outcome);
* :class:`TextRobustness`, what a spam filter's owner asks: clean accuracy and F1 of the
  positive (spam) class, and per attack at its fixed query budget the **evasion rate** (of the
  spam the filter caught, the share the attack gets classified as ham), the mean queries and
  the mean edit fractions per successful evasion.

Only the ``attacked_classes`` are attacked (for a spam filter: spam — nobody disguises ham as
spam); samples of other classes count as robust when classified correctly. Attacks run in
cost order; every attack sees every clean-correct attacked sample (``standalone``) so that
per-attack numbers are comparable, and the worst case is per sample over all of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

import bastion
from bastion.attacks import LIBRARY_VERSION, manifest_digest
from bastion.attacks.text import TextAttack, TextAttackRun, TextModel
from bastion.config import Channel, EvaluationConfig, ThreatModel
from bastion.errors import EvaluationError
from bastion.evaluate.checks import Flag, empty_suite
from bastion.evaluate.metrics import per_class_accuracy, reliability
from bastion.evaluate.record import (
    SCHEMA_VERSION,
    AttackResult,
    ClassResult,
    EvaluationRecord,
    Latency,
)
from bastion.evaluate.suite import SuiteEntry, build_entries, order_by_cost

__all__ = ["TextAttackOutcome", "TextEvaluation", "TextRobustness", "evaluate_text", "f1_score"]


@dataclass(frozen=True, kw_only=True)
class TextAttackOutcome:
    """One attack against the positive class, at its query budget."""

    label: str
    name: str
    version: str
    params: dict[str, Any]
    max_queries: int
    attacked: int
    successes: int
    evasion_rate: float
    mean_queries_per_success: float
    mean_edit_fraction_per_success: float
    mean_word_fraction_per_success: float
    seconds: float


@dataclass(frozen=True, kw_only=True)
class TextRobustness:
    """The spam filter's view of one evaluation (see the module docstring)."""

    n_samples: int
    positive_class: str
    clean_accuracy: float
    positive_f1: float
    positive_precision: float
    positive_recall: float
    attacks: tuple[TextAttackOutcome, ...]
    #: share of the caught positives that at least one attack got through
    worst_case_evasion_rate: float

    def attack(self, label: str) -> TextAttackOutcome:
        for outcome in self.attacks:
            if outcome.label == label:
                return outcome
        raise KeyError(f"no attack labelled {label!r}; known: {[a.label for a in self.attacks]}")

    def strongest(self) -> TextAttackOutcome | None:
        """The attack with the highest evasion rate (``None`` without attacks)."""
        return max(self.attacks, key=lambda a: a.evasion_rate, default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class TextEvaluation:
    """The standard record and the text view, from the same runs."""

    record: EvaluationRecord
    robustness: TextRobustness
    runs: dict[str, TextAttackRun]

    def to_dict(self, *, examples: int = 0) -> dict[str, Any]:
        """JSON-ready; ``examples`` adversarial examples per attack are included."""
        out: dict[str, Any] = {
            "record": self.record.to_dict(),
            "text": self.robustness.to_dict(),
        }
        if examples:
            out["examples"] = {
                label: [
                    {"original": r.original, "adversarial": r.adversarial}
                    for r in run.results
                    if r.success
                ][:examples]
                for label, run in self.runs.items()
            }
        return out


def f1_score(
    predicted: np.ndarray, labels: np.ndarray, positive: int
) -> tuple[float, float, float]:
    """``(f1, precision, recall)`` of class ``positive`` (0 where undefined)."""
    tp = int(np.sum((predicted == positive) & (labels == positive)))
    fp = int(np.sum((predicted == positive) & (labels != positive)))
    fn = int(np.sum((predicted != positive) & (labels == positive)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


def _probs(model: TextModel, texts: list[str], classes: int, batch: int) -> np.ndarray:
    out = []
    for start in range(0, len(texts), batch):
        part = np.asarray(model.predict_proba(texts[start : start + batch]), dtype=np.float64)
        if part.shape != (len(texts[start : start + batch]), classes):
            raise EvaluationError(
                f"predict_proba returned shape {part.shape}; expected "
                f"({len(texts[start : start + batch])}, {classes})"
            )
        out.append(part)
    return np.concatenate(out) if out else np.empty((0, classes))


def _latency(
    model: TextModel, texts: list[str], config: EvaluationConfig, batched: float
) -> Latency:
    count = min(config.latency_samples, len(texts))
    times = np.empty(count)
    for i in range(count):
        start = time.perf_counter()
        model.predict_proba([texts[i]])
        times[i] = time.perf_counter() - start
    return Latency(
        p50_ms=float(np.percentile(times, 50) * 1e3) if count else 0.0,
        p95_ms=float(np.percentile(times, 95) * 1e3) if count else 0.0,
        single_samples=count,
        batched_ms_per_sample=batched * 1e3 / max(len(texts), 1),
        batch_size=config.batch_size,
    )


def evaluate_text(
    model: TextModel,
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    threat_model: ThreatModel | Sequence[SuiteEntry],
    config: EvaluationConfig | None = None,
    *,
    classes: Sequence[str] = ("ham", "spam"),
    positive: int = 1,
    attacked_classes: Sequence[int] | None = (1,),
    ids: Sequence[int] | np.ndarray | None = None,
    dataset: str | None = None,
    dataset_fingerprint: str | None = None,
) -> TextEvaluation:
    """Attack ``model`` on ``texts`` with the threat model's text attacks; both views.

    ``config.max_samples`` keeps a prefix of the texts (pass a stratified order to keep the
    class balance); ``attacked_classes=None`` attacks every class.
    """
    config = config or EvaluationConfig()
    started, clock = datetime.now(UTC), time.perf_counter()
    items = [str(t) for t in texts]
    y = np.asarray(labels, dtype=np.int64)
    sample_ids = np.arange(len(items)) if ids is None else np.asarray(ids, dtype=np.int64)
    if y.shape != (len(items),) or sample_ids.shape != (len(items),):
        raise EvaluationError(f"need one label and one id per text ({len(items)} texts)")
    if config.max_samples is not None:
        items, y, sample_ids = (
            items[: config.max_samples],
            y[: config.max_samples],
            sample_ids[: config.max_samples],
        )
    if not items:
        raise EvaluationError("no texts to evaluate")
    if not 0 <= positive < len(classes):
        raise EvaluationError(f"positive class {positive} is not one of 0..{len(classes) - 1}")
    if isinstance(threat_model, ThreatModel):
        entries = build_entries(threat_model, Channel.TEXT, seed=config.seed)
        tm_name, tm_print = threat_model.name, threat_model.fingerprint()
    else:
        entries = list(threat_model)
        tm_name, tm_print = "inline", ""
    suite: list[tuple[str, TextAttack]] = []
    for entry in order_by_cost(entries):
        if not isinstance(entry.attack, TextAttack):
            raise EvaluationError(f"attack {entry.label!r} is not a text attack")
        suite.append((entry.label, entry.attack))

    t0 = time.perf_counter()
    clean = _probs(model, items, len(classes), config.batch_size)
    batched = time.perf_counter() - t0
    predicted = clean.argmax(axis=1)
    correct = predicted == y
    wanted = (
        np.ones(len(y), dtype=bool) if attacked_classes is None else np.isin(y, attacked_classes)
    )
    targets = np.flatnonzero(correct & wanted)

    robust = correct.copy()
    adversarial = list(items)
    results: list[AttackResult] = []
    outcomes: list[TextAttackOutcome] = []
    runs: dict[str, TextAttackRun] = {}
    positives = targets[y[targets] == positive]
    evaded_any = np.zeros(len(y), dtype=bool)
    for label, attack in suite:
        a0 = time.perf_counter()
        run = attack.run(model, [items[i] for i in targets], y[targets])
        seconds = time.perf_counter() - a0
        runs[label] = run
        broken = []
        for i, result in zip(targets, run.results, strict=True):
            if result.success:
                broken.append(int(sample_ids[i]))
                if robust[i]:
                    adversarial[i] = result.adversarial
                robust[i] = False
                evaded_any[i] = y[i] == positive
        wins = [
            r for i, r in zip(targets, run.results, strict=True) if r.success and y[i] == positive
        ]
        results.append(
            AttackResult(
                label=label,
                name=attack.name,
                version=attack.version,
                params=attack.get_params(),
                norm=attack.norm,
                budget=attack.budget,
                uses_gradients=attack.uses_gradients,
                cost=attack.cost(),
                attacked=len(targets),
                success_count=len(broken),
                robust_accuracy=float(np.mean(correct & ~np.isin(sample_ids, broken))),
                cumulative_accuracy=float(np.mean(robust)),
                seconds=seconds,
                broken_ids=tuple(broken),
            )
        )
        outcomes.append(
            TextAttackOutcome(
                label=label,
                name=attack.name,
                version=attack.version,
                params=attack.get_params(),
                max_queries=int(attack.max_queries),
                attacked=len(positives),
                successes=len(wins),
                evasion_rate=len(wins) / len(positives) if len(positives) else 0.0,
                mean_queries_per_success=float(np.mean([r.queries for r in wins])) if wins else 0.0,
                mean_edit_fraction_per_success=(
                    float(np.mean([r.edit_fraction for r in wins])) if wins else 0.0
                ),
                mean_word_fraction_per_success=(
                    float(np.mean([r.word_fraction for r in wins])) if wins else 0.0
                ),
                seconds=seconds,
            )
        )

    worst = _probs(model, adversarial, len(classes), config.batch_size)
    flags: list[Flag] = [] if entries else [empty_suite(Channel.TEXT.value)]
    per_class_clean = per_class_accuracy(correct, y, len(classes))
    per_class_robust = per_class_accuracy(robust, y, len(classes))
    counts = np.bincount(y, minlength=len(classes))
    f1, precision, recall = f1_score(predicted, y, positive)
    finished = datetime.now(UTC)
    record = EvaluationRecord(
        schema_version=SCHEMA_VERSION,
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        seconds=time.perf_counter() - clock,
        bastion_version=getattr(bastion, "__version__", "unknown"),
        torch_version=torch.__version__,
        torch_threads=torch.get_num_threads(),
        attack_library_version=LIBRARY_VERSION,
        attack_manifest_digest=manifest_digest(),
        threat_model=tm_name,
        threat_model_fingerprint=tm_print,
        channel=Channel.TEXT,
        dataset=dataset,
        dataset_fingerprint=dataset_fingerprint,
        config=config,
        n_samples=len(items),
        classes=tuple(classes),
        clean_accuracy=float(np.mean(correct)),
        worst_case_accuracy=float(np.mean(robust)),
        attacks=tuple(results),
        calibration_clean=reliability(clean.max(axis=1), correct, config.ece_bins),
        calibration_adversarial=reliability(
            worst.max(axis=1), worst.argmax(axis=1) == y, config.ece_bins
        ),
        per_class=tuple(
            ClassResult(
                label=name,
                count=int(counts[k]),
                clean_accuracy=per_class_clean[k],
                robust_accuracy=per_class_robust[k],
            )
            for k, name in enumerate(classes)
        ),
        latency=_latency(model, items, config, batched),
        flags=tuple(flags),
        checks_seconds=0.0,
        sample_ids=tuple(int(i) for i in sample_ids),
        robust_mask=tuple(bool(r) for r in robust),
    )
    robustness = TextRobustness(
        n_samples=len(items),
        positive_class=classes[positive],
        clean_accuracy=float(np.mean(correct)),
        positive_f1=f1,
        positive_precision=precision,
        positive_recall=recall,
        attacks=tuple(outcomes),
        worst_case_evasion_rate=(
            float(np.sum(evaded_any[positives]) / len(positives)) if len(positives) else 0.0
        ),
    )
    return TextEvaluation(record=record, robustness=robustness, runs=runs)
