"""The adversarial-training recipe: which objective, against which perturbations, on what
schedule.

A recipe says *how* to train; the threat model says *against what*. So the training budget
ε defaults to the threat model's largest L∞ image budget, and only an explicit ``eps``
departs from it. Every hyperparameter the plain ``train:`` section also has (epochs, batch
size, optimiser, learning rate, weight decay, seed) may be left out of the recipe, in which
case the ``train:`` value applies: one YAML file does not repeat itself.

    recipe:
      method: trades          # pgd_at | trades | mart | fgsm_rs
      beta: 6.0
      epochs: 20
      lr_schedule: {kind: one_cycle, warmup_epochs: 4}
      exposure: {epochs: 5, eps_start: 0.05, adv_fraction_start: 0.5}
      awp: {gamma: 0.005}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, model_validator

from bastion.config.base import Section
from bastion.config.threat import AttackSpec

__all__ = [
    "AWPConfig",
    "AttackSettings",
    "CheckConfig",
    "EMAConfig",
    "ExposureConfig",
    "GuardConfig",
    "LRScheduleConfig",
    "Method",
    "MixStrategy",
    "PerturbationMix",
    "RecipeConfig",
    "ScheduleKind",
    "TrackingConfig",
    "WeightedAttack",
]


class Method(StrEnum):
    """The training objective."""

    PGD_AT = "pgd_at"  # Madry et al. 2018
    TRADES = "trades"  # Zhang et al. 2019
    MART = "mart"  # Wang et al. 2020
    FGSM_RS = "fgsm_rs"  # Wong et al. 2020, "Fast is better than free"


class ScheduleKind(StrEnum):
    CONSTANT = "constant"
    PIECEWISE = "piecewise"
    COSINE = "cosine"
    ONE_CYCLE = "one_cycle"


class MixStrategy(StrEnum):
    SAMPLE = "sample"  # each batch draws one attack, with probability proportional to weight
    MAX = "max"  # each sample takes its worst over all listed attacks (Tramèr & Boneh 2019)


class LRScheduleConfig(Section):
    """Learning rate over (fractional) epochs, as a multiple of the base ``lr``.

    * ``constant``: 1.
    * ``piecewise``: multiplied by ``gamma`` at each of ``milestones`` (epochs).
    * ``cosine``: half a cosine from 1 down to ``final_fraction``.
    * ``one_cycle``: linear from 1 down to ``final_fraction`` (after the warm-up, the cycle
      of Smith & Topin that Wong et al. use for fast adversarial training).

    Every kind may start with a linear warm-up from ``warmup_start`` over ``warmup_epochs``;
    ``one_cycle`` without a given warm-up warms up over the first 40 % of training.
    """

    kind: ScheduleKind = ScheduleKind.CONSTANT
    warmup_epochs: float | None = Field(default=None, ge=0)
    warmup_start: float = Field(default=0.0, ge=0, le=1, description="fraction of lr")
    milestones: list[float] = Field(default_factory=list, description="piecewise: epochs")
    gamma: float = Field(default=0.1, gt=0, le=1, description="piecewise: factor per milestone")
    final_fraction: float = Field(default=0.0, ge=0, le=1, description="cosine/one_cycle end")

    @model_validator(mode="after")
    def _milestones(self) -> Self:
        if self.milestones and self.kind is not ScheduleKind.PIECEWISE:
            raise ValueError(f"milestones only apply to kind 'piecewise', not {self.kind.value!r}")
        if any(m <= 0 for m in self.milestones):
            raise ValueError("milestones must be positive epochs")
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:], strict=False)):
            raise ValueError(f"milestones must increase strictly; got {self.milestones}")
        return self


class ExposureConfig(Section):
    """Phased exposure: ε (and the adversarial share of each batch) ramp linearly from their
    start values to full strength over the first ``epochs`` epochs."""

    epochs: float = Field(default=0.0, ge=0, description="length of the ramp; 0: no ramp")
    eps_start: float = Field(default=0.0, ge=0, le=1, description="L∞ ε at the start")
    adv_fraction_start: float = Field(default=1.0, ge=0, le=1)
    adv_fraction: float = Field(default=1.0, gt=0, le=1, description="share after the ramp")


class AttackSettings(Section):
    """The method's own training attack. ``None`` means the method's default: 10 steps of
    ``2.5 ε / steps`` for PGD-AT, TRADES and MART; one FGSM step of ``1.25 ε`` from a random
    start for fast FGSM-RS. An absolute ``step_size`` stays fixed while ε ramps; the default
    scales with the current ε."""

    steps: int | None = Field(default=None, ge=1)
    step_size: float | None = Field(default=None, gt=0)
    random_start: bool = True


class WeightedAttack(AttackSpec):
    """A registry attack with a weight (its share of batches under strategy ``sample``)."""

    weight: float = Field(default=1.0, gt=0)


class PerturbationMix(Section):
    """Mixed perturbation types: the training attack is drawn from ``attacks``.

    An attack with an ``eps`` parameter that does not give one gets the training ε when it
    measures L∞; during a phased ramp every ``eps`` is scaled by current ε / final ε.
    """

    strategy: MixStrategy = MixStrategy.SAMPLE
    attacks: list[WeightedAttack] = Field(min_length=1)


class AWPConfig(Section):
    """Adversarial weight perturbation (Wu et al. 2020): before each update the weights move
    by ``gamma`` times their own norm (layer by layer) in the direction that increases the
    adversarial loss; the update is computed there and applied to the unperturbed weights.

    From a randomly initialised model at a large budget, let plain adversarial training run
    first (``warmup_epochs``): switched on from the first epoch, AWP kept small_cnn at chance
    on MNIST at ε = 0.3 (``bench/training.py``); after 2 of 5 epochs it trained normally.
    """

    gamma: float = Field(default=5e-3, gt=0, le=1)
    warmup_epochs: int = Field(default=0, ge=0, description="epochs before AWP starts")


class EMAConfig(Section):
    """An exponential moving average of the weights; the saved model is the average."""

    decay: float = Field(default=0.999, gt=0, lt=1)


class CheckConfig(Section):
    """Each epoch, a PGD check on a held-out batch (the validation split)."""

    samples: int = Field(default=256, ge=1)
    steps: int = Field(default=10, ge=1)


class GuardConfig(Section):
    """Fast FGSM-RS only: detect catastrophic overfitting (Wong et al. 2020) from the
    epoch's PGD check and roll back to the last good checkpoint with a safer attack (first
    a halved FGSM step, then 2-step PGD).

    An epoch has collapsed when its PGD accuracy on the held-out batch

    * fell more than ``drop`` below the best earlier epoch (Wong et al.'s criterion), or
    * fell to at most ``fraction`` of that best while the training attack's own accuracy
      is at least ``gap`` above it: the model beats its FGSM step and nothing else.
    """

    enabled: bool = True
    drop: float = Field(default=0.2, gt=0, le=1)
    fraction: float = Field(default=0.25, ge=0, lt=1)
    gap: float = Field(default=0.3, gt=0, le=1)
    max_rollbacks: int = Field(default=2, ge=0)


class TrackingConfig(Section):
    """MLflow tracking, used when the ``mlflow`` package is importable."""

    mlflow: bool = Field(default=True, description="false: never log to MLflow")
    uri: str | None = Field(default=None, description="tracking URI; None: MLflow's default")
    experiment: str = "bastion"


_NEEDS_ATTACK_MIX = (Method.PGD_AT, Method.TRADES, Method.MART)


class RecipeConfig(Section):
    """How to train adversarially against the threat model."""

    method: Method = Method.PGD_AT
    eps: float | None = Field(
        default=None, gt=0, le=1, description="L∞ training budget; None: the threat model's"
    )
    epochs: int | None = Field(default=None, ge=1, description="None: train.epochs")
    batch_size: int | None = Field(default=None, ge=1, description="global; None: train's")
    optimizer: Literal["adam", "sgd"] | None = None
    lr: float | None = Field(default=None, gt=0)
    momentum: float | None = Field(default=None, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float | None = Field(default=None, ge=0)
    lr_schedule: LRScheduleConfig = Field(default_factory=LRScheduleConfig)
    grad_clip: float | None = Field(default=None, gt=0, description="max global grad L2 norm")
    ema: EMAConfig | None = None
    exposure: ExposureConfig = Field(default_factory=ExposureConfig)
    attack: AttackSettings = Field(default_factory=AttackSettings)
    perturbations: PerturbationMix | None = None
    beta: float | None = Field(
        default=None, ge=0, description="TRADES/MART robust-loss weight; None: 6.0"
    )
    awp: AWPConfig | None = None
    check: CheckConfig = Field(default_factory=CheckConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    clean_metrics: bool = Field(
        default=True, description="an extra forward per batch to report clean accuracy"
    )
    keep_checkpoints: int = Field(default=2, ge=1, description="epoch checkpoints kept")
    seed: int | None = Field(default=None, ge=0, description="None: train.seed")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        method = self.method
        if self.beta is not None and method not in (Method.TRADES, Method.MART):
            raise ValueError(f"beta applies to methods trades and mart, not {method.value!r}")
        if self.awp is not None and method not in (Method.PGD_AT, Method.TRADES):
            raise ValueError(f"awp applies to methods pgd_at and trades, not {method.value!r}")
        if self.perturbations is not None and method not in _NEEDS_ATTACK_MIX:
            raise ValueError(
                f"perturbations apply to methods pgd_at, trades and mart; {method.value!r} "
                "trains on its own FGSM step"
            )
        if method is Method.FGSM_RS and self.attack.steps not in (None, 1):
            raise ValueError(f"fgsm_rs takes one step; got attack.steps={self.attack.steps}")
        exposure = self.exposure
        if exposure.adv_fraction_start > exposure.adv_fraction:
            raise ValueError("exposure.adv_fraction_start must not exceed exposure.adv_fraction")
        if self.eps is not None and exposure.eps_start > self.eps:
            raise ValueError(f"exposure.eps_start {exposure.eps_start} exceeds eps {self.eps}")
        return self
