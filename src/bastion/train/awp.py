"""Adversarial weight perturbation (Wu et al. 2020, "Adversarial Weight Perturbation Helps
Robust Generalization").

Before each update the weights are moved to a nearby point where the training loss is
higher — per layer, ``w += γ · ‖w‖ · g / ‖g‖`` with ``g`` the gradient of the same
objective (PGD-AT's or TRADES') — the update is computed there, and the move is undone, so
the optimiser steps from the unperturbed weights with the gradient of the perturbed ones.
This flattens the weight-loss landscape, which is what closes the robust generalisation gap.

As in the authors' code only multi-dimensional weights (convolution and linear matrices)
are perturbed, and one ascent step defines the direction; because the step is normalised
per layer, the direction is the gradient itself, so no proxy copy of the model is needed.
Under DDP the gradients are averaged over ranks first, so every rank applies the same
perturbation and the replicas stay identical.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bastion.train.distributed import all_reduce_sum, current
from bastion.train.objectives import Objective

__all__ = ["WeightPerturbation"]

_TINY = 1e-20


class WeightPerturbation:
    """``diffs = awp.perturb(x, x_adv, y, k)`` ... optimiser step ... ``awp.restore(diffs)``."""

    def __init__(self, model: nn.Module, objective: Objective, gamma: float) -> None:
        self.model = model
        self.objective = objective
        self.gamma = gamma
        self.weights = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]

    def perturb(self, x: Tensor, x_adv: Tensor, y: Tensor, k: int) -> list[Tensor]:
        """Move the weights uphill; returns the moves for :meth:`restore`."""
        model = self.model
        buffers = [b.detach().clone() for b in model.buffers()]
        was_training = model.training
        model.train()
        try:
            with torch.enable_grad():
                loss = self.objective(model, x, x_adv, y, k).loss
                grads = torch.autograd.grad(loss, self.weights, allow_unused=True)
        finally:
            model.train(was_training)
            with torch.no_grad():  # BatchNorm statistics must not see the probe pass
                for b, saved in zip(model.buffers(), buffers, strict=True):
                    b.copy_(saved)
        pairs = zip(self.weights, grads, strict=True)
        gs = [torch.zeros_like(w) if g is None else g for w, g in pairs]
        ctx = current()
        if ctx.distributed:
            flat = torch.cat([g.reshape(-1) for g in gs])
            all_reduce_sum(flat).div_(ctx.world_size)
            gs = list(torch.split(flat, [g.numel() for g in gs]))
            gs = [g.view_as(w) for g, w in zip(gs, self.weights, strict=True)]
        diffs = []
        with torch.no_grad():
            for w, g in zip(self.weights, gs, strict=True):
                diff = self.gamma * w.norm() / (g.norm() + _TINY) * g
                w.add_(diff)
                diffs.append(diff)
        return diffs

    def restore(self, diffs: list[Tensor]) -> None:
        """Undo :meth:`perturb` (after the optimiser step)."""
        with torch.no_grad():
            for w, diff in zip(self.weights, diffs, strict=True):
                w.sub_(diff)
