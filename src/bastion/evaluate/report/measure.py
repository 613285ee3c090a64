"""The report's diagnostic series, measured on a slice of the test split.

The evaluation record holds the headline numbers, the reliability bins and the per-class
results, and the report draws those directly. Two pictures need the model itself: how accuracy
decays as the budget grows (the robustness curve, with cheapened attacks at fractions of each
budget, since it is a picture and not a claim) and what an attack actually does to an input.
Both use the threat model's own attacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from bastion import attacks
from bastion.config.threat import AttackSpec
from bastion.evaluate.report.data import CurvePoint, ExampleGrid

__all__ = ["Diagnostics", "measure_diagnostics"]

#: caps that make an attack cheap enough for a curve point (a picture, not a claim)
_CHEAP_CAPS = {"steps": 10, "restarts": 1, "n_queries": 100, "n_iter": 10, "iterations": 10}


@dataclass(frozen=True)
class Diagnostics:
    robustness_curve: list[CurvePoint]
    examples: ExampleGrid | None
    samples: int


@torch.no_grad()
def _logits(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    if x.shape[0] == 0:
        return torch.empty(0)
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def _attack_batched(attack: Any, model: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> Tensor:
    parts = [
        attack(model, x[i : i + batch_size], y[i : i + batch_size])
        for i in range(0, x.shape[0], batch_size)
    ]
    return torch.cat(parts) if parts else x.clone()


def _cheap(spec: AttackSpec, eps: float | None = None) -> Any:
    """The attack of ``spec`` with its iteration counts capped (and ``eps`` replaced)."""
    cls = attacks.get(spec.name)
    params = dict(spec.params)
    if eps is not None:
        params["eps"] = eps
    for key, cap in _CHEAP_CAPS.items():
        if key in cls.params:
            current = params.get(key, cls.params[key].default)
            if isinstance(current, int) and current > cap:
                params[key] = cap
    return attacks.create(spec.name, **params)


def _curve(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    specs: Sequence[AttackSpec],
    fractions: Sequence[float],
    clean_accuracy: float,
    batch_size: int,
) -> list[CurvePoint]:
    points: list[CurvePoint] = []
    n = int(x.shape[0])
    for spec in specs:
        cls = attacks.get(spec.name)
        if "eps" not in cls.params:
            continue
        eps = float(spec.params.get("eps", cls.params["eps"].default))
        points.append(CurvePoint(spec.display_name, 0.0, clean_accuracy, n))
        for fraction in fractions:
            attack = _cheap(spec, eps * fraction)
            adv = _attack_batched(attack, model, x, y, batch_size)
            accuracy = float((_logits(model, adv, batch_size).argmax(1) == y).double().mean())
            points.append(CurvePoint(spec.display_name, eps * fraction, accuracy, n))
    return points


def measure_diagnostics(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    ids: Tensor,
    classes: Sequence[str],
    specs: Sequence[AttackSpec],
    *,
    curve_samples: int = 100,
    example_samples: int = 32,
    fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    examples: int = 8,
    batch_size: int = 256,
) -> Diagnostics:
    """The robustness curve on the first ``curve_samples`` points of a split, and an example
    grid from the first ``example_samples``, both with cheapened attacks (iterations capped:
    pictures, not claims; the claims are the evaluation record's).

    The examples follow the evaluation's worst-case rule: attacks run cheapest first, each on
    the points still standing, and each shown input is the first attack's that fooled it.
    """
    was_training = model.training
    model.eval()
    try:
        m = min(curve_samples, int(x.shape[0]))
        xc, yc = x[:m], y[:m]
        curve_clean = float((_logits(model, xc, batch_size).argmax(1) == yc).double().mean())
        curve = _curve(model, xc, yc, specs, fractions, curve_clean, batch_size) if m else []
        x, y, ids = x[:example_samples], y[:example_samples], ids[:example_samples]
        clean_pred = _logits(model, x, batch_size).argmax(1)
        built = sorted(
            ((spec, _cheap(spec)) for spec in specs),
            key=lambda pair: pair[1].cost(),
        )
        worst_x = x.clone()
        standing = clean_pred == y
        fooled_by: list[str | None] = [None] * int(x.shape[0])
        for spec, attack in built:
            todo = torch.nonzero(standing).flatten()
            if todo.numel() == 0:
                break
            adv = _attack_batched(attack, model, x[todo], y[todo], batch_size)
            worst_x[todo] = adv
            broken = _logits(model, adv, batch_size).argmax(1) != y[todo]
            for i in todo[broken].tolist():
                fooled_by[i] = spec.display_name
            standing[todo[broken]] = False
        adv_pred = _logits(model, worst_x, batch_size).argmax(1)
        grid = _examples(x, worst_x, y, ids, clean_pred, adv_pred, classes, fooled_by, examples)
        return Diagnostics(curve, grid, m)
    finally:
        model.train(was_training)


def _examples(
    x: Tensor,
    worst_x: Tensor,
    y: Tensor,
    ids: Tensor,
    clean_pred: Tensor,
    adv_pred: Tensor,
    classes: Sequence[str],
    fooled_by: Sequence[str | None],
    count: int,
) -> ExampleGrid | None:
    if x.dim() != 4 or count <= 0 or x.shape[0] == 0:
        return None
    # prefer points the attack flipped (the interesting ones), then the rest, in test order
    flipped = [i for i in range(int(x.shape[0])) if fooled_by[i] is not None]
    rest = [i for i in range(int(x.shape[0])) if fooled_by[i] is None]
    chosen = (flipped + rest)[:count]
    name = [str(c) for c in classes]
    return ExampleGrid(
        sample_ids=[int(ids[i]) for i in chosen],
        labels=[name[int(y[i])] for i in chosen],
        clean=[x[i].tolist() for i in chosen],
        adversarial=[worst_x[i].tolist() for i in chosen],
        clean_predictions=[name[int(clean_pred[i])] for i in chosen],
        adversarial_predictions=[name[int(adv_pred[i])] for i in chosen],
        attacks=[fooled_by[i] for i in chosen],
    )
