"""One concrete training plan, resolved once from the ``train:`` section, the recipe and the
threat model.

The loop never asks "did the recipe say so, or the train section, or the threat model?":
every default is settled here, every bad combination becomes a :class:`ConfigError` naming
the field, and the plan's fingerprint tells a resumed run whether its checkpoint was written
by the same plan.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from bastion import attacks
from bastion.attacks.base import Norm
from bastion.config.model import TrainConfig
from bastion.config.recipe import (
    AWPConfig,
    CheckConfig,
    ExposureConfig,
    GuardConfig,
    LRScheduleConfig,
    MixStrategy,
    RecipeConfig,
    TrackingConfig,
)
from bastion.config.threat import ThreatModel
from bastion.errors import BastionError, ConfigError

__all__ = ["DEFAULT_BETA", "MixEntry", "Mode", "Plan", "resolve_plan", "training_eps"]

DEFAULT_BETA = 6.0
DEFAULT_STEPS = 10
FGSM_RS_STEP = 1.25  # Wong et al. 2020: alpha = 1.25 eps


class Mode(StrEnum):
    """What the loop trains: clean (no recipe) or one of the recipe's methods."""

    CLEAN = "clean"
    PGD_AT = "pgd_at"
    TRADES = "trades"
    MART = "mart"
    FGSM_RS = "fgsm_rs"


@dataclass(frozen=True)
class MixEntry:
    """One attack of a perturbation mix: registry name, fixed parameters, weight."""

    name: str
    params: dict[str, Any]
    weight: float
    scales_eps: bool  # its ``eps`` follows the phased ramp


@dataclass(frozen=True)
class Plan:
    """Everything the loop needs, with no ``None`` left that means "look elsewhere"."""

    mode: Mode
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: LRScheduleConfig
    grad_clip: float | None
    ema_decay: float | None
    seed: int
    eps: float | None = None
    exposure: ExposureConfig = field(default_factory=ExposureConfig)
    steps: int = DEFAULT_STEPS
    step_size: float | None = None
    random_start: bool = True
    mix: tuple[MixEntry, ...] = ()
    mix_strategy: MixStrategy = MixStrategy.SAMPLE
    beta: float = DEFAULT_BETA
    awp: AWPConfig | None = None
    check: CheckConfig = field(default_factory=CheckConfig)
    guard: GuardConfig | None = None
    clean_metrics: bool = True
    keep_checkpoints: int = 2
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    @property
    def adversarial(self) -> bool:
        return self.mode is not Mode.CLEAN

    def describe(self) -> dict[str, Any]:
        """JSON-ready: what the artifact, the metrics and MLflow record about the plan."""
        out = asdict(self)
        for key in ("schedule", "exposure", "awp", "check", "guard", "tracking"):
            value = getattr(self, key)
            out[key] = value.model_dump(mode="json") if value is not None else None
        out["mode"] = self.mode.value
        out["mix_strategy"] = self.mix_strategy.value
        out["mix"] = [asdict(m) for m in self.mix]
        return out

    def fingerprint(self) -> str:
        """sha256 of everything that changes the trained weights (not tracking, not
        checkpoint housekeeping)."""
        described = self.describe()
        for key in ("tracking", "keep_checkpoints"):
            described.pop(key)
        blob = json.dumps(described, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


def training_eps(threat_model: ThreatModel | None) -> float | None:
    """The largest L∞ budget among the threat model's image attacks (``None`` if none)."""
    if threat_model is None:
        return None
    best: float | None = None
    for i, spec in enumerate(threat_model.channel("image").attacks):
        try:
            attack = attacks.create(spec.name, **spec.params)
        except BastionError as exc:
            raise ConfigError(str(exc), path=f"threat_model.image.attacks[{i}]") from exc
        budget = attack.budget
        if attack.norm is Norm.LINF and budget is not None:
            best = budget if best is None else max(best, budget)
    return best


def resolve_plan(
    train: TrainConfig, recipe: RecipeConfig | None, threat_model: ThreatModel | None
) -> Plan:
    """The plan for clean training (``recipe`` is ``None``) or for ``recipe``."""
    if recipe is None:
        return Plan(
            mode=Mode.CLEAN,
            epochs=train.epochs,
            batch_size=train.batch_size,
            optimizer=train.optimizer,
            lr=train.lr,
            momentum=train.momentum,
            nesterov=False,
            weight_decay=train.weight_decay,
            schedule=LRScheduleConfig(),
            grad_clip=None,
            ema_decay=None,
            seed=train.seed,
        )
    eps = recipe.eps if recipe.eps is not None else training_eps(threat_model)
    if eps is None:
        raise ConfigError(
            "no training budget: set recipe.eps or declare an L∞ image attack in "
            "threat_model.image.attacks",
            path="recipe.eps",
        )
    if recipe.exposure.eps_start > eps:
        raise ConfigError(
            f"exposure.eps_start {recipe.exposure.eps_start} exceeds the training eps {eps}",
            path="recipe.exposure.eps_start",
        )
    epochs = recipe.epochs if recipe.epochs is not None else train.epochs
    _check_epochs(recipe, epochs)
    mode = Mode(recipe.method.value)
    steps = recipe.attack.steps if recipe.attack.steps is not None else DEFAULT_STEPS
    if mode is Mode.FGSM_RS:
        steps = 1
    mix = _resolve_mix(recipe, eps)
    return Plan(
        mode=mode,
        epochs=epochs,
        batch_size=recipe.batch_size if recipe.batch_size is not None else train.batch_size,
        optimizer=recipe.optimizer if recipe.optimizer is not None else train.optimizer,
        lr=recipe.lr if recipe.lr is not None else train.lr,
        momentum=recipe.momentum if recipe.momentum is not None else train.momentum,
        nesterov=recipe.nesterov,
        weight_decay=(
            recipe.weight_decay if recipe.weight_decay is not None else train.weight_decay
        ),
        schedule=recipe.lr_schedule,
        grad_clip=recipe.grad_clip,
        ema_decay=recipe.ema.decay if recipe.ema is not None else None,
        seed=recipe.seed if recipe.seed is not None else train.seed,
        eps=eps,
        exposure=recipe.exposure,
        steps=steps,
        step_size=recipe.attack.step_size,
        random_start=recipe.attack.random_start,
        mix=mix,
        mix_strategy=(
            recipe.perturbations.strategy if recipe.perturbations else MixStrategy.SAMPLE
        ),
        beta=recipe.beta if recipe.beta is not None else DEFAULT_BETA,
        awp=recipe.awp,
        check=recipe.check,
        guard=recipe.guard if mode is Mode.FGSM_RS and recipe.guard.enabled else None,
        clean_metrics=recipe.clean_metrics,
        keep_checkpoints=recipe.keep_checkpoints,
        tracking=recipe.tracking,
    )


def _check_epochs(recipe: RecipeConfig, epochs: int) -> None:
    schedule = recipe.lr_schedule
    if schedule.warmup_epochs is not None and schedule.warmup_epochs > epochs:
        raise ConfigError(
            f"warm-up of {schedule.warmup_epochs} epochs exceeds the {epochs} training epochs",
            path="recipe.lr_schedule.warmup_epochs",
        )
    if schedule.milestones and schedule.milestones[-1] >= epochs:
        raise ConfigError(
            f"milestone {schedule.milestones[-1]} is not before the end of training "
            f"({epochs} epochs)",
            path="recipe.lr_schedule.milestones",
        )
    if recipe.awp is not None and recipe.awp.warmup_epochs >= epochs:
        raise ConfigError(
            f"AWP would start after training ends (warmup_epochs {recipe.awp.warmup_epochs}, "
            f"{epochs} epochs)",
            path="recipe.awp.warmup_epochs",
        )


def _resolve_mix(recipe: RecipeConfig, eps: float) -> tuple[MixEntry, ...]:
    if recipe.perturbations is None:
        return ()
    entries = []
    for i, spec in enumerate(recipe.perturbations.attacks):
        where = f"recipe.perturbations.attacks[{i}]"
        params = dict(spec.params)
        if "seed" in params:
            raise ConfigError(
                "the training loop seeds every batch's attack; remove 'seed'",
                path=f"{where}.params.seed",
            )
        try:
            cls = attacks.get(spec.name)
            probe = cls(**params)
        except BastionError as exc:
            raise ConfigError(str(exc), path=where) from exc
        has_eps = "eps" in cls.params
        if has_eps and "eps" not in params:
            if probe.norm is not Norm.LINF:
                raise ConfigError(
                    f"{spec.name} measures its budget in {probe.norm.value}; give its eps "
                    "(only L∞ attacks inherit the training eps)",
                    path=f"{where}.params",
                )
            params["eps"] = eps
            try:
                cls(**params)
            except BastionError as exc:
                raise ConfigError(str(exc), path=where) from exc
        entries.append(
            MixEntry(name=spec.name, params=params, weight=spec.weight, scales_eps=has_eps)
        )
    return tuple(entries)
