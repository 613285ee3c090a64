"""The text channel end to end: train a filter, attack it, harden it, measure all four.

``run_text_flow(config)`` loads the dataset (e.g. ``sms_spam``), trains the baseline text
model the config names, and builds the hardened variants the text section asks for:

=================  ================================================================
``baseline``       the model trained on the clean training split
``sanitized``      the same model trained and served behind the sanitiser
``adversarial``    adversarial data augmentation (rounds of attack-and-add)
``hardened``       both: the sanitiser and augmentation against the sanitised model
=================  ================================================================

Each is evaluated on the test split against the threat model's text attacks
(:func:`bastion.evaluate.text.evaluate_text`); the models are saved as artifacts and one
JSON summary says which attack was strongest on the baseline, how much hardening cut its
evasion rate and what it cost in clean F1. Gating and registering the hardened model is the
main pipeline's job; this function returns what it needs (artifact folder and record).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.attacks.text import TextAttack
from bastion.config import BastionConfig, Channel, EvaluationConfig
from bastion.config.text import TextHardeningConfig
from bastion.data import Dataset, load_dataset
from bastion.data import sms_spam as _sms_spam  # noqa: F401  (registers the loader)
from bastion.defend.text import SanitizedModel, Sanitizer
from bastion.errors import ConfigError
from bastion.evaluate.suite import build_entries
from bastion.evaluate.text import TextEvaluation, evaluate_text
from bastion.models.text import CharBagNet, TfidfLogReg, save_text_model
from bastion.train.text_augment import AugmentResult, Trainable, adversarial_augment

__all__ = ["CONDITIONS", "TextFlowResult", "run_text_flow", "text_model_factory"]

CONDITIONS = ("baseline", "sanitized", "adversarial", "hardened")
_ARCHITECTURES: dict[str, type[TfidfLogReg] | type[CharBagNet]] = {
    "tfidf_logreg": TfidfLogReg,
    "char_bag": CharBagNet,
}


@dataclass(kw_only=True)
class TextFlowResult:
    """Per condition: the evaluation and the saved artifact; plus the summary."""

    out_dir: Path
    evaluations: dict[str, TextEvaluation] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    augmentation: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "conditions": {
                name: evaluation.robustness.to_dict()
                for name, evaluation in self.evaluations.items()
            },
            "augmentation": self.augmentation,
            "artifacts": {name: str(path) for name, path in self.artifacts.items()},
            "records": {
                name: evaluation.record.to_dict() for name, evaluation in self.evaluations.items()
            },
        }


def text_model_factory(config: BastionConfig) -> Callable[[], TfidfLogReg | CharBagNet]:
    """A function building a fresh, untrained model as ``config.model`` describes."""
    architecture = config.model.architecture
    cls = _ARCHITECTURES.get(architecture)
    if cls is None:
        raise ConfigError(
            f"text models are {', '.join(sorted(_ARCHITECTURES))}; got {architecture!r}",
            source=config.source,
            path="model.architecture",
        )
    arguments = dict(config.model.arguments)
    try:
        cls(**arguments)
    except TypeError as exc:
        raise ConfigError(str(exc), source=config.source, path="model.arguments") from exc
    return lambda: cls(**arguments)


def _attacks(
    config: BastionConfig, hardening: TextHardeningConfig, baseline: TextEvaluation | None
) -> list[TextAttack]:
    """The augmentation attacks: the configured ones, else the threat model's text attacks
    that evaded the baseline most (all of them when there is no baseline evaluation)."""
    entries = build_entries(config.threat_model, Channel.TEXT, source=config.source)
    if hardening.attacks:
        channel = config.threat_model.channel(Channel.TEXT).model_copy(
            update={"attacks": hardening.attacks}
        )
        threat = config.threat_model.model_copy(update={"text": channel})
        entries = build_entries(threat, Channel.TEXT, source=config.source)
    elif baseline is not None:
        rate = {a.label: a.evasion_rate for a in baseline.robustness.attacks}
        entries = sorted(entries, key=lambda e: -rate.get(e.label, 0.0))
        entries = entries[: hardening.strongest_attacks]
    return [e.attack for e in entries if isinstance(e.attack, TextAttack)]


def run_text_flow(
    config: BastionConfig,
    *,
    hardening: TextHardeningConfig | None = None,
    out_dir: Path | None = None,
    conditions: tuple[str, ...] = CONDITIONS,
    log: Callable[[str], None] | None = None,
) -> TextFlowResult:
    """Train, attack, harden and evaluate a text classifier as ``config`` declares.

    ``hardening`` defaults to ``config.text`` when the schema has that section, else to
    :class:`TextHardeningConfig`'s defaults. Writes ``<out_dir>/<condition>/`` artifacts and
    ``<out_dir>/text_flow.json``; ``out_dir`` defaults to ``config.output_dir / config.name``.
    """
    say = log or (lambda message: None)
    hardening = hardening or getattr(config, "text", None) or TextHardeningConfig()
    unknown = sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        raise ConfigError(f"unknown condition(s) {unknown}; choose from {list(CONDITIONS)}")
    out = Path(out_dir) if out_dir is not None else Path(config.output_dir) / config.name
    dataset = load_dataset(config.data)
    if dataset.modality != Channel.TEXT.value:
        raise ConfigError(
            f"the text flow needs a text dataset; {dataset.name!r} is {dataset.modality}",
            source=config.source,
            path="data.name",
        )
    factory = text_model_factory(config)
    entries = build_entries(config.threat_model, Channel.TEXT, source=config.source)
    if not entries:
        raise ConfigError(
            "the threat model declares no text attacks to evaluate against",
            source=config.source,
            path="threat_model.text.attacks",
        )
    sanitizer = Sanitizer()
    result = TextFlowResult(out_dir=out)
    x, y = [str(t) for t in dataset.train.x], dataset.train.y
    for name in conditions:
        start = time.perf_counter()
        sanitized = name in ("sanitized", "hardened") and hardening.sanitize
        make: Callable[[], Trainable] = (
            (lambda: SanitizedModel(factory(), sanitizer)) if sanitized else factory
        )
        augment = name in ("adversarial", "hardened")
        train_attacks = (
            _attacks(config, hardening, result.evaluations.get("baseline")) if augment else []
        )
        trained = adversarial_augment(
            make,
            x,
            y,
            train_attacks,
            rounds=hardening.rounds if augment else 0,
            examples_per_round=hardening.examples_per_round,
            max_added=hardening.max_added,
            attacked_classes=hardening.attacked_classes,
            seed=hardening.seed,
            log=say,
        )
        result.augmentation[name] = {
            **trained.to_dict(),
            "attacks": [a.describe() for a in train_attacks],
        }
        evaluation = _evaluate(trained, dataset, config, hardening, entries)
        result.evaluations[name] = evaluation
        result.artifacts[name] = _save(trained, out / name, sanitized, sanitizer, name)
        strongest = evaluation.robustness.strongest()
        say(
            f"{name}: spam F1 {evaluation.robustness.positive_f1:.4f}, strongest attack "
            f"{strongest.label if strongest else '-'} evades "
            f"{strongest.evasion_rate if strongest else 0.0:.1%} "
            f"({time.perf_counter() - start:.0f} s)"
        )
    result.summary = _summary(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "text_flow.json").write_text(
        json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return result


def _evaluate(
    trained: AugmentResult,
    dataset: Dataset,
    config: BastionConfig,
    hardening: TextHardeningConfig,
    entries: list[Any],
) -> TextEvaluation:
    evaluation_config: EvaluationConfig = config.evaluation
    return evaluate_text(
        trained.model,
        [str(t) for t in dataset.test.x],
        dataset.test.y,
        entries,
        evaluation_config,
        classes=dataset.classes,
        positive=hardening.positive_class,
        attacked_classes=hardening.attacked_classes,
        ids=dataset.test.ids,
        dataset=dataset.name,
        dataset_fingerprint=dataset.fingerprint,
    )


def _save(
    trained: AugmentResult, folder: Path, sanitized: bool, sanitizer: Sanitizer, name: str
) -> Path:
    model = trained.model.model if isinstance(trained.model, SanitizedModel) else trained.model
    if not isinstance(model, TfidfLogReg | CharBagNet):
        raise ConfigError(f"cannot save a {type(model).__name__} as a text model artifact")
    # no timings in the artifact: the same training must give the same artifact digest, or a
    # retrain registers a new version of an identical model
    extra: dict[str, Any] = {"condition": name, "augmentation": _untimed(trained.to_dict())}
    if sanitized:
        extra["sanitizer"] = sanitizer.describe()
    return save_text_model(model, folder, extra=extra)


def _untimed(value: Any) -> Any:
    """``value`` without its ``seconds`` entries, at any depth."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list | tuple):
        return [_untimed(v) for v in value]
    return value


def _summary(result: TextFlowResult) -> dict[str, Any]:
    base = result.evaluations.get("baseline")
    out: dict[str, Any] = {}
    if base is None:
        return out
    strongest = base.robustness.strongest()
    out["baseline_spam_f1"] = base.robustness.positive_f1
    if strongest is None:
        return out
    out["strongest_attack"] = strongest.label
    out["baseline_evasion_rate"] = strongest.evasion_rate
    for name, evaluation in result.evaluations.items():
        rate = evaluation.robustness.attack(strongest.label).evasion_rate
        out[f"{name}_evasion_rate"] = rate
        out[f"{name}_spam_f1"] = evaluation.robustness.positive_f1
        out[f"{name}_worst_case_evasion_rate"] = evaluation.robustness.worst_case_evasion_rate
    hardened = result.evaluations.get("hardened")
    if hardened is not None:
        rate = hardened.robustness.attack(strongest.label).evasion_rate
        # None when hardening stops the attack completely (the factor is unbounded)
        out["evasion_reduction_factor"] = strongest.evasion_rate / rate if rate > 0 else None
        out["spam_f1_change_points"] = 100 * (
            hardened.robustness.positive_f1 - base.robustness.positive_f1
        )
    return out
