"""Numerics shared by the image attacks: losses, input gradients, projections, random starts.

The input gradient is always taken at an input that is *already* inside [0, 1] and is the
leaf of the graph. Clamping inside the graph (``model(torch.clamp(x + delta, 0, 1))`` with
``delta`` as the leaf) zeroes the gradient on saturated pixels and silently weakens FGSM/PGD
and the adversarial training built on them; ``tests/attacks/image/test_ops.py`` guards it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from bastion.attacks.base import Model, Norm
from bastion.errors import AttackError

__all__ = [
    "BestKeeper",
    "Draw",
    "LossFn",
    "best_of_draws",
    "ce_loss",
    "check_logits",
    "dlr_loss",
    "dlr_targeted_loss",
    "input_gradient",
    "l2_normalize",
    "margin",
    "margin_loss",
    "project",
    "random_start",
]

#: per-sample loss from (logits, labels) -> shape (N,); larger = more adversarial
LossFn = Callable[[Tensor, Tensor], Tensor]
#: a random candidate for each clean input: (x, generator) -> same shape, in [0, 1]
Draw = Callable[[Tensor, torch.Generator], Tensor]

_TINY = 1e-12


def ce_loss(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def margin_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Carlini-Wagner margin: best other logit minus the true logit."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return other.amax(dim=1) - true


def dlr_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Difference of Logits Ratio (Croce & Hein 2020, eq. 6): shift- and scale-invariant."""
    ordered, _ = logits.sort(dim=1)
    true = logits.gather(1, y[:, None]).squeeze(1)
    top_is_true = (ordered[:, -1] == true).to(logits.dtype)
    best_other = ordered[:, -2] * top_is_true + ordered[:, -1] * (1.0 - top_is_true)
    return -(true - best_other) / (ordered[:, -1] - ordered[:, -3] + _TINY)


def dlr_targeted_loss(logits: Tensor, y: Tensor, target: Tensor) -> Tensor:
    """Targeted DLR (Croce & Hein 2020, eq. 7): push ``target`` above ``y``."""
    ordered, _ = logits.sort(dim=1)
    true = logits.gather(1, y[:, None]).squeeze(1)
    tgt = logits.gather(1, target[:, None]).squeeze(1)
    scale = ordered[:, -1] - 0.5 * (ordered[:, -3] + ordered[:, -4]) + _TINY
    return -(true - tgt) / scale


def input_gradient(
    model: Model, x: Tensor, y: Tensor, loss_fn: LossFn, *, check: str | None = None
) -> tuple[Tensor, Tensor]:
    """Gradient of ``sum(loss_fn(model(x), y))`` w.r.t. ``x`` only, and the logits.

    ``x`` must already be inside [0, 1]; it is made the leaf here. With ``check`` (the
    attack's name) the logits first go through :func:`check_logits`.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        if check is not None:
            check_logits(check, logits, y)
        loss = loss_fn(logits, y).sum()
        (grad,) = torch.autograd.grad(loss, x)
    return grad, logits.detach()


def check_logits(name: str, logits: Tensor, y: Tensor, *, min_classes: int = 2) -> None:
    """Raise :class:`AttackError` unless ``logits`` is an (N, K) float batch with K at least
    ``min_classes`` and every label below K; the first model output an attack sees goes
    through here so that a wrong model fails with a sentence instead of an index error."""
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() != 2:
        got = f"shape {tuple(logits.shape)}" if isinstance(logits, Tensor) else type(logits)
        raise AttackError(f"{name}: the model must return (N, classes) float logits; got {got}")
    if logits.shape[0] != y.shape[0]:
        raise AttackError(
            f"{name}: the model returned {logits.shape[0]} rows for a batch of {y.shape[0]}"
        )
    classes = logits.shape[1]
    if classes < min_classes:
        raise AttackError(f"{name} needs at least {min_classes} classes; the model has {classes}")
    if y.numel() and int(y.max()) >= classes:
        raise AttackError(f"{name}: label {int(y.max())} is out of range for {classes} classes")


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """True logit minus the best other logit: negative once the sample is misclassified."""
    return -margin_loss(logits, y)


class BestKeeper:
    """Per sample, the most adversarial point visited so far: the first misclassified one,
    otherwise the one with the lowest margin. An attack that offers every point it evaluates
    is therefore never weaker than any single point it visited."""

    def __init__(self, x: Tensor) -> None:
        self.x = x.clone()
        self.score = torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)

    def offer(self, index: Tensor, points: Tensor, logits: Tensor, y: Tensor) -> Tensor:
        """Offer ``points`` (samples ``index`` of the batch, evaluated as ``logits``) and
        return which of them are misclassified."""
        fooled = logits.argmax(dim=1) != y
        score = torch.where(fooled, float("-inf"), margin(logits, y).to(self.score.dtype))
        better = score < self.score[index]
        if bool(better.any()):
            chosen = index[better]
            self.x[chosen] = points[better]
            self.score[chosen] = score[better]
        return fooled

    @property
    def fooled(self) -> Tensor:
        return torch.isneginf(self.score)


def best_of_draws(
    name: str,
    model: Model,
    x: Tensor,
    y: Tensor,
    draw: Draw,
    trials: int,
    generator: torch.Generator,
) -> Tensor:
    """Random search without gradients: up to ``trials`` candidates per sample from ``draw``,
    each only for the samples no earlier candidate fooled; per sample the first fooling
    candidate is kept, otherwise the one with the lowest margin. The result is always a
    drawn candidate (a corruption returns corrupted inputs, never the clean ones). Runs
    under ``torch.no_grad``."""
    with torch.no_grad():
        keeper = BestKeeper(x)
        todo = torch.arange(x.shape[0], device=x.device)
        for trial in range(trials):
            candidates = draw(x[todo], generator)
            logits = model(candidates)
            if trial == 0:
                check_logits(name, logits, y)
            keeper.offer(todo, candidates, logits, y[todo])
            todo = todo[~keeper.fooled[todo]]
            if todo.numel() == 0:
                break
    return keeper.x


def l2_normalize(v: Tensor) -> Tensor:
    norms = v.flatten(1).norm(dim=1).clamp_min(_TINY)
    out: Tensor = v / norms.view(-1, *([1] * (v.dim() - 1)))
    return out


def project(x_adv: Tensor, x: Tensor, eps: float, norm: Norm) -> Tensor:
    """Nearest point to ``x_adv`` in the ``norm`` ball of radius ``eps`` around ``x``, in [0, 1]."""
    delta = x_adv - x
    if norm is Norm.LINF:
        delta = delta.clamp(-eps, eps)
    elif norm is Norm.L2:
        norms = delta.flatten(1).norm(dim=1).clamp_min(_TINY)
        factor = (eps / norms).clamp(max=1.0)
        delta = delta * factor.view(-1, *([1] * (x.dim() - 1)))
    else:
        raise ValueError(f"project supports linf and l2; got {norm}")
    return (x + delta).clamp(0.0, 1.0)


def random_start(x: Tensor, eps: float, norm: Norm, generator: torch.Generator) -> Tensor:
    """A uniformly random point of the ``norm`` ball around ``x``, clipped to [0, 1]."""
    if norm is Norm.LINF:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        delta = (2.0 * noise - 1.0) * eps
    elif norm is Norm.L2:
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        direction = l2_normalize(direction)
        dims = x[0].numel()
        u = torch.rand((x.shape[0],), generator=generator, device=x.device, dtype=x.dtype)
        radius = eps * u.pow(1.0 / dims)
        delta = direction * radius.view(-1, *([1] * (x.dim() - 1)))
    else:
        raise ValueError(f"random_start supports linf and l2; got {norm}")
    return (x + delta).clamp(0.0, 1.0)
