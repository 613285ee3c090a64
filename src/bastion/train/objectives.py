"""The training losses, one per method, over a batch whose first ``k`` rows were attacked.

Each objective does exactly one forward pass of the network it is given (clean and
adversarial rows concatenated when it needs both), so that DistributedDataParallel sees one
forward per backward, and returns its loss with the logits the loop reports accuracy from.

* clean: cross-entropy on the clean batch.
* PGD-AT (Madry et al. 2018) and fast FGSM-RS (Wong et al. 2020): cross-entropy on the
  batch with its attacked rows replaced by their adversarial versions.
* TRADES (Zhang et al. 2019): ``CE(f(x), y) + β · KL(f(x) || f(x')) `` summed over the
  attacked rows and divided by the batch size (the paper's ``batchmean``).
* MART (Wang et al. 2020): boosted cross-entropy on the adversarial rows plus
  ``β · KL(f(x) || f(x')) · (1 - p_y(x))``, which weights misclassified clean points up.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bastion.train.plan import Mode

__all__ = ["Objective", "StepOutput"]

_TINY = 1e-12


@dataclass(frozen=True)
class StepOutput:
    """The loss (with its graph) and detached logits for the metrics."""

    loss: Tensor
    clean_logits: Tensor | None  # all rows, when the objective computed them
    adv_logits: Tensor | None  # the attacked rows


class Objective:
    """``objective(net, x, x_adv, y, k)``: the loss of ``mode`` with robust weight ``beta``.

    ``x_adv`` has the same rows as ``x``; only its first ``k`` are adversarial.
    """

    def __init__(self, mode: Mode, beta: float) -> None:
        self.mode = mode
        self.beta = beta

    def __call__(self, net: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, k: int) -> StepOutput:
        mode = self.mode
        if mode is Mode.CLEAN:
            logits = net(x)
            return StepOutput(F.cross_entropy(logits, y), logits.detach(), None)
        if mode in (Mode.PGD_AT, Mode.FGSM_RS):
            logits = net(x_adv)
            loss = F.cross_entropy(logits, y)
            return StepOutput(loss, None, logits[:k].detach())
        logits = net(torch.cat([x, x_adv[:k]]))
        clean, adv = logits[: x.shape[0]], logits[x.shape[0] :]
        if mode is Mode.TRADES:
            loss = self._trades(clean, adv, y)
        elif mode is Mode.MART:
            loss = self._mart(clean, adv, y)
        else:  # pragma: no cover - Mode is closed
            raise ValueError(f"unknown training mode {mode!r}")
        return StepOutput(loss, clean.detach(), adv.detach())

    def _trades(self, clean: Tensor, adv: Tensor, y: Tensor) -> Tensor:
        natural = F.cross_entropy(clean, y)
        k = adv.shape[0]
        if k == 0:
            return natural
        kl = (
            F.kl_div(F.log_softmax(adv, dim=1), F.softmax(clean[:k], dim=1), reduction="sum")
            / clean.shape[0]
        )
        return natural + self.beta * kl

    def _mart(self, clean: Tensor, adv: Tensor, y: Tensor) -> Tensor:
        k = adv.shape[0]
        # rows past k were not attacked: their "adversarial" logits are the clean ones
        adv_all = torch.cat([adv, clean[k:]])
        adv_probs = F.softmax(adv_all, dim=1)
        top2 = adv_probs.argsort(dim=1)[:, -2:]
        runner_up = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])
        boosted = F.cross_entropy(adv_all, y) + F.nll_loss(
            torch.log(1.0001 - adv_probs + _TINY), runner_up
        )
        clean_probs = F.softmax(clean, dim=1)
        true_prob = clean_probs.gather(1, y[:, None]).squeeze(1)
        kl = F.kl_div(torch.log(adv_probs + _TINY), clean_probs, reduction="none").sum(dim=1)
        robust = (kl * (1.0000001 - true_prob)).mean()
        return boosted + self.beta * robust
