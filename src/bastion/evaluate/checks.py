"""Sanity checks that say when a robustness number cannot be trusted.

A robust accuracy is an upper bound that is only as good as the attacks behind it. Models
that mask gradients (softmax outputs fed to a cross-entropy attack, quantising or
non-differentiable layers, randomness at test time) make gradient attacks fail without
being robust, and the evaluation then reports a number that a slightly different attack
would destroy (Athalye et al. 2018; Croce & Hein 2020, whose AutoAttack runs similar checks).
Each check here turns one such symptom into a :class:`Flag`; the engine warns with
:class:`EvaluationWarning` and stores every flag in the record, so a gate can refuse an
evaluation that raised one.

====================== ===================================================================
flag                   meaning, and what to do
====================== ===================================================================
softmax_outputs        Every output row is non-negative and sums to 1: the model returns
                       probabilities, not logits. Cross-entropy on probabilities has
                       vanishing gradients, so gradient attacks are weakened, and the ECE
                       (computed on a softmax of the outputs) is distorted. Remove the
                       final softmax; return logits.
zero_gradients         More than ``ZERO_GRADIENT_FRACTION`` of the probed samples have an
                       input gradient of the logit margin that is exactly zero everywhere:
                       a step function, rounding, ``detach`` or a custom backward hides the
                       gradient. Gradient attacks then only see their random start. Attack a
                       differentiable surrogate (BPDA) or rely on gradient-free attacks.
nonfinite_gradients    Some probed input gradients contain NaN or inf; gradient attacks
                       produce garbage steps on those samples. Fix the numerics (e.g. a log
                       of zero, division by a vanishing norm) inside the model.
gradients_unavailable  The model's backward pass raised: gradient attacks cannot run. Only
                       gradient-free attacks (e.g. square, noise) can evaluate this model.
randomized_outputs     Two forward passes on the same inputs in eval mode disagree: the
                       model is stochastic at test time (active dropout, input noise). A
                       single-sample attack underestimates such a model's weakness; use
                       expectation over transformation (EOT) and report it.
black_box_stronger     A gradient-free attack broke more than ``BLACK_BOX_FRACTION`` of the
                       samples (AutoAttack's 0.2 points) that every gradient attack of the
                       same norm and an equal or larger budget failed on. With working
                       gradients the white-box attacks should be at least as strong; this
                       is the signature of gradient masking (or of too weak a gradient
                       attack: raise its steps or restarts, or add apgd_ce/apgd_dlr).
empty_suite            The threat model declares no attack for the evaluated channel: the
                       "robust" accuracy equals the clean accuracy and measures nothing.
====================== ===================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch
from torch import Tensor

from bastion.attacks import Attack, Model, Norm

__all__ = [
    "BLACK_BOX_FRACTION",
    "PROBABILITY_TOLERANCE",
    "ZERO_GRADIENT_FRACTION",
    "EvaluationWarning",
    "Flag",
    "FlagCode",
    "black_box_stronger",
    "check_gradients",
    "check_probability_outputs",
    "check_randomized",
    "comparable_white_box",
    "empty_suite",
]

#: a row counts as a probability vector when it is >= 0 and sums to 1 within this tolerance
PROBABILITY_TOLERANCE = 1e-4
#: flag zero gradients when more than this fraction of probed samples have none at all
ZERO_GRADIENT_FRACTION = 0.1
#: flag black_box_stronger when the gradient-free attack's extra breaks exceed this fraction
BLACK_BOX_FRACTION = 0.002
#: how many sample ids a flag lists in its details (the record keeps all ids elsewhere)
_MAX_IDS = 50
_RTOL, _ATOL = 1e-4, 1e-5


class FlagCode(StrEnum):
    SOFTMAX_OUTPUTS = "softmax_outputs"
    ZERO_GRADIENTS = "zero_gradients"
    NONFINITE_GRADIENTS = "nonfinite_gradients"
    GRADIENTS_UNAVAILABLE = "gradients_unavailable"
    RANDOMIZED_OUTPUTS = "randomized_outputs"
    BLACK_BOX_STRONGER = "black_box_stronger"
    EMPTY_SUITE = "empty_suite"


@dataclass(frozen=True, kw_only=True)
class Flag:
    """One raised sanity flag: a stable code, a sentence for people, and the evidence."""

    code: FlagCode
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "details": self.details}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Flag:
        return cls(
            code=FlagCode(data["code"]),
            message=str(data["message"]),
            details=dict(data.get("details", {})),
        )


class EvaluationWarning(UserWarning):
    """Warned once per raised :class:`Flag`; the flag itself is on ``.flag``."""

    def __init__(self, flag: Flag) -> None:
        super().__init__(f"[{flag.code.value}] {flag.message}")
        self.flag = flag


def check_probability_outputs(outputs: Tensor) -> Flag | None:
    """Flag when every row of ``outputs`` (N, K) looks like a probability vector."""
    if outputs.numel() == 0:
        return None
    low = float(outputs.min())
    worst = float((outputs.double().sum(dim=1) - 1.0).abs().max())
    if low < 0.0 or worst > PROBABILITY_TOLERANCE:
        return None
    return Flag(
        code=FlagCode.SOFTMAX_OUTPUTS,
        message="the model's outputs are non-negative and every row sums to 1: it returns "
        "probabilities, not logits, which weakens gradient attacks; return logits",
        details={"rows": int(outputs.shape[0]), "max_abs_row_sum_error": worst},
    )


def _margin(logits: Tensor, y: Tensor) -> Tensor:
    """Best other output minus the true one: piecewise linear, so it does not saturate."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(
        torch.nn.functional.one_hot(y, logits.shape[1]).bool(), float("-inf")
    )
    return other.amax(dim=1) - true


def check_gradients(model: Model, x: Tensor, y: Tensor) -> tuple[list[Flag], Tensor]:
    """Input gradients of the logit margin on a probe batch: zero, non-finite or unavailable.

    Returns the flags and the outputs of this (grad-enabled) forward pass, which
    :func:`check_randomized` compares with a second pass.
    """
    probe = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        outputs = model(probe)
        loss = _margin(outputs, y).sum()
        if not loss.requires_grad:  # the graph was cut (detach / no_grad inside the model)
            return [
                _zero_flag(
                    x.shape[0],
                    x.shape[0],
                    "the output does not depend on the input through autograd",
                )
            ], outputs.detach()
        try:
            (grad,) = torch.autograd.grad(loss, probe, allow_unused=True)
        except RuntimeError as exc:
            flag = Flag(
                code=FlagCode.GRADIENTS_UNAVAILABLE,
                message=f"the model's backward pass failed ({exc}); gradient attacks cannot "
                "run on it",
                details={"error": f"{type(exc).__name__}: {exc}"},
            )
            return [flag], outputs.detach()
    outputs = outputs.detach()
    if grad is None:
        return [_zero_flag(x.shape[0], x.shape[0], "the input is unused by autograd")], outputs
    flat = grad.flatten(1)
    finite = torch.isfinite(flat).all(dim=1)
    flags: list[Flag] = []
    nonfinite = int((~finite).sum())
    if nonfinite:
        flags.append(
            Flag(
                code=FlagCode.NONFINITE_GRADIENTS,
                message=f"{nonfinite} of {x.shape[0]} probed samples have NaN or inf input "
                "gradients",
                details={"count": nonfinite, "probed": int(x.shape[0])},
            )
        )
    zero = int(((flat == 0).all(dim=1) & finite).sum())
    if zero > ZERO_GRADIENT_FRACTION * x.shape[0]:
        flags.append(_zero_flag(zero, x.shape[0], None))
    return flags, outputs


def _zero_flag(zero: int, probed: int, why: str | None) -> Flag:
    reason = f" ({why})" if why else ""
    return Flag(
        code=FlagCode.ZERO_GRADIENTS,
        message=f"{zero} of {probed} probed samples have an all-zero input gradient{reason}; "
        "gradient attacks are blind on them (gradient masking)",
        details={"count": zero, "probed": probed, "fraction": zero / probed},
    )


def check_randomized(model: Model, x: Tensor, reference: Tensor) -> Flag | None:
    """Flag when a second forward pass on ``x`` disagrees with ``reference`` outputs."""
    with torch.no_grad():
        again = model(x).detach()
    if again.shape == reference.shape and torch.allclose(
        again.float(), reference.float(), rtol=_RTOL, atol=_ATOL
    ):
        return None
    diff = (
        float((again.float() - reference.float()).abs().max())
        if again.shape == reference.shape
        else float("nan")
    )
    return Flag(
        code=FlagCode.RANDOMIZED_OUTPUTS,
        message="two forward passes on the same inputs in eval mode differ: the model is "
        "randomized at test time, so single-run attacks underestimate it (use EOT)",
        details={"probed": int(x.shape[0]), "max_abs_difference": diff},
    )


def comparable_white_box(black: Attack, white: Attack) -> bool:
    """Whether ``white`` (a gradient attack) should be at least as strong as ``black``.

    True when ``black`` uses no gradients, ``white`` does, and ``white``'s budget in the same
    (L∞ or L2) norm is at least ``black``'s.
    """
    if black.uses_gradients or not white.uses_gradients:
        return False
    if black.norm not in (Norm.LINF, Norm.L2) or white.norm is not black.norm:
        return False
    b, w = black.budget, white.budget
    return b is not None and w is not None and w >= b * (1 - 1e-9)


def black_box_stronger(
    label: str, white_labels: Sequence[str], ids: Sequence[int], n_samples: int
) -> Flag | None:
    """The flag for gradient-free attack ``label`` breaking ``ids`` (of ``n_samples``) that
    ``white_labels`` all failed on; ``None`` when too few to matter."""
    if not ids or len(ids) <= BLACK_BOX_FRACTION * n_samples:
        return None
    return Flag(
        code=FlagCode.BLACK_BOX_STRONGER,
        message=f"gradient-free attack {label!r} broke {len(ids)} samples that the gradient "
        f"attacks ({', '.join(white_labels)}) failed on: a sign of gradient masking",
        details={
            "attack": label,
            "gradient_attacks": list(white_labels),
            "count": len(ids),
            "fraction": len(ids) / n_samples,
            "sample_ids": [int(i) for i in ids[:_MAX_IDS]],
        },
    )


def empty_suite(channel: str) -> Flag:
    return Flag(
        code=FlagCode.EMPTY_SUITE,
        message=f"the threat model declares no {channel} attack: robust accuracy equals clean "
        "accuracy and measures nothing",
        details={"channel": channel},
    )
