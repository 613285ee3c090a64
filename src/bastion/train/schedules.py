"""Schedules as pure functions of the (fractional) epoch.

Everything that changes during training — the learning rate, the budget ε, the adversarial
share of a batch — is a function of ``t = epoch + step / steps_per_epoch`` and nothing else.
That is what makes a resumed run identical to an uninterrupted one: there is no schedule
state to lose, only the position ``t``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from bastion.config.recipe import ExposureConfig, LRScheduleConfig, ScheduleKind

__all__ = ["Ramp", "lr_factor", "lr_lambda", "ramp_value"]

#: one_cycle without an explicit warm-up warms up over this share of training
ONE_CYCLE_WARMUP_SHARE = 0.4


def lr_factor(schedule: LRScheduleConfig, t: float, epochs: float) -> float:
    """The learning rate at fractional epoch ``t`` of ``epochs``, as a multiple of the base."""
    t = min(max(t, 0.0), epochs)
    warmup = schedule.warmup_epochs
    if warmup is None:
        warmup = ONE_CYCLE_WARMUP_SHARE * epochs if schedule.kind is ScheduleKind.ONE_CYCLE else 0.0
    warmup = min(warmup, epochs)
    if warmup > 0 and t < warmup:
        return schedule.warmup_start + (1.0 - schedule.warmup_start) * t / warmup
    kind = schedule.kind
    if kind is ScheduleKind.CONSTANT:
        return 1.0
    if kind is ScheduleKind.PIECEWISE:
        passed = sum(1 for m in schedule.milestones if t >= m)
        return float(schedule.gamma**passed)
    span = epochs - warmup
    progress = 1.0 if span <= 0 else (t - warmup) / span
    final = schedule.final_fraction
    if kind is ScheduleKind.COSINE:
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if kind is ScheduleKind.ONE_CYCLE:
        return 1.0 + (final - 1.0) * progress
    raise ValueError(f"unknown schedule kind {kind!r}")


def lr_lambda(
    schedule: LRScheduleConfig, epochs: int, steps_per_epoch: int
) -> Callable[[int], float]:
    """``LambdaLR``'s function of the optimiser step count (stepped once per batch)."""

    def factor(step: int) -> float:
        return lr_factor(schedule, step / steps_per_epoch, float(epochs))

    return factor


def ramp_value(start: float, end: float, ramp_epochs: float, t: float) -> float:
    """Linear from ``start`` at ``t = 0`` to ``end`` at ``t = ramp_epochs``, then ``end``."""
    if ramp_epochs <= 0 or t >= ramp_epochs:
        return end
    return start + (end - start) * max(t, 0.0) / ramp_epochs


class Ramp:
    """Phased exposure: the budget and the adversarial share at fractional epoch ``t``."""

    def __init__(self, exposure: ExposureConfig, eps: float) -> None:
        self.exposure = exposure
        self.eps_final = eps

    def eps(self, t: float) -> float:
        e = self.exposure
        return ramp_value(min(e.eps_start, self.eps_final), self.eps_final, e.epochs, t)

    def adv_fraction(self, t: float) -> float:
        e = self.exposure
        return ramp_value(e.adv_fraction_start, e.adv_fraction, e.epochs, t)
