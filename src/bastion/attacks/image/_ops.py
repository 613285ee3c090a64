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

__all__ = [
    "LossFn",
    "ce_loss",
    "dlr_loss",
    "dlr_targeted_loss",
    "input_gradient",
    "l2_normalize",
    "margin_loss",
    "project",
    "random_start",
]

#: per-sample loss from (logits, labels) -> shape (N,); larger = more adversarial
LossFn = Callable[[Tensor, Tensor], Tensor]

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


def input_gradient(model: Model, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
    """Gradient of ``sum(loss_fn(model(x), y))`` w.r.t. ``x`` only, and the logits.

    ``x`` must already be inside [0, 1]; it is made the leaf here.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = loss_fn(logits, y).sum()
        (grad,) = torch.autograd.grad(loss, x)
    return grad, logits.detach()


def l2_normalize(v: Tensor) -> Tensor:
    norms = v.flatten(1).norm(dim=1).clamp_min(_TINY)
    return v / norms.view(-1, *([1] * (v.dim() - 1)))


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
