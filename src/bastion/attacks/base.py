"""The attack base classes: they own the plumbing so each attack module holds only its
algorithm.

Every attack is a small class with a registry ``name``, a ``version``, a ``modality`` and a
parameter table; it is built with keyword arguments only (validated against the table) and
called as ``attack(model, x, y) -> x_adv``. The image base call additionally

* checks that ``x`` is a float batch in [0, 1] and ``y`` matching integer labels,
* puts the model in eval mode for the attack and restores its previous mode afterwards,
* draws all randomness from a private generator seeded by the ``seed`` parameter, so that the
  same attack on the same inputs gives the same result and global RNG state is untouched,
* never writes to ``x`` (the algorithm gets a detached copy) nor to the model's parameters or
  their ``.grad`` (gradients are taken with ``torch.autograd.grad`` w.r.t. the input only),
* verifies the result is inside the budget and inside [0, 1], raising
  :class:`~bastion.errors.BudgetViolation` otherwise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from bastion.attacks.params import Interval, Param
from bastion.errors import AttackError, BudgetViolation, ParameterError

__all__ = ["Attack", "ImageAttack", "Modality", "Model", "Norm"]

#: Anything that maps a batch of inputs in [0, 1] to logits.
Model = nn.Module | Callable[[Tensor], Tensor]

_LINF_TOL = 1e-6
_L2_RTOL = 1e-4


class Modality(StrEnum):
    IMAGE = "image"
    TEXT = "text"
    TABULAR = "tabular"


class Norm(StrEnum):
    """How an attack's budget is measured."""

    LINF = "linf"
    L2 = "l2"
    L0 = "l0"  # number of input elements changed (occlusion)
    EDIT = "edit"  # text edits
    NONE = "none"  # unbounded corruption (only the input range is enforced)


class Attack(ABC):
    """Common to every attack: identity, declared parameters and their validation."""

    name: ClassVar[str]
    version: ClassVar[str]
    modality: ClassVar[Modality]
    #: parameter table; subclasses extend it with ``{**Base.params, ...}``
    params: ClassVar[Mapping[str, Param]] = {
        "seed": Param(Interval(int, 0, None), 0, "seed of the attack's private generator"),
    }
    #: whether the attack needs gradients of the model (Square, noise: no)
    uses_gradients: ClassVar[bool] = True
    #: relative cost (forward+backward passes per sample) used to order a suite
    cost_hint: ClassVar[str] = "passes"

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self.params))
        if unknown:
            raise ParameterError(
                self.name, unknown[0], "one of " + ", ".join(sorted(self.params)), "<unknown>"
            )
        self._values: dict[str, Any] = {}
        for key, spec in self.params.items():
            value = kwargs.get(key, spec.default)
            if not spec.constraint.accepts(value):
                raise ParameterError(self.name, key, spec.constraint.describe(), value)
            self._values[key] = value
        self._check()

    def _check(self) -> None:
        """Cross-parameter checks; raise :class:`ParameterError`."""

    def __getattr__(self, key: str) -> Any:
        values = self.__dict__.get("_values")
        if values is not None and key in values:
            return values[key]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {key!r}")

    def get_params(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({args})"

    @property
    def norm(self) -> Norm:
        return Norm.NONE

    @property
    def budget(self) -> float | None:
        """The size of the perturbation budget in :attr:`norm` (``None`` if unbounded)."""
        return None

    def cost(self) -> float:
        """Model passes per sample, to order a suite cheapest first."""
        return 1.0

    def describe(self) -> dict[str, Any]:
        """A JSON-ready identity: what a registry row or report stores about this attack."""
        return {
            "name": self.name,
            "version": self.version,
            "modality": self.modality.value,
            "norm": self.norm.value,
            "budget": self.budget,
            "params": self.get_params(),
        }


class ImageAttack(Attack):
    """Base of attacks on batches of float images in [0, 1] with integer labels."""

    modality = Modality.IMAGE

    def __call__(self, model: Model, x: Tensor, y: Tensor) -> Tensor:
        _check_batch(self.name, x, y)
        if x.shape[0] == 0:
            return x.detach().clone()
        module = model if isinstance(model, nn.Module) else None
        was_training = module.training if module is not None else False
        if module is not None:
            module.eval()
        try:
            generator = torch.Generator(device=x.device)
            generator.manual_seed(int(self.seed))
            x_adv = self._perturb(model, x.detach().clone(), y.detach(), generator)
        finally:
            if module is not None:
                module.train(was_training)
        x_adv = x_adv.detach()
        self.verify(x, x_adv)
        return x_adv

    @abstractmethod
    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        """The algorithm. ``x`` is a private copy; return the adversarial batch."""

    def verify(self, x: Tensor, x_adv: Tensor) -> None:
        """Raise :class:`BudgetViolation` unless ``x_adv`` is inside the budget and [0, 1]."""
        if x_adv.shape != x.shape or x_adv.dtype != x.dtype:
            raise BudgetViolation(
                f"{self.name} returned shape {tuple(x_adv.shape)}/{x_adv.dtype}, "
                f"expected {tuple(x.shape)}/{x.dtype}"
            )
        if not torch.isfinite(x_adv).all():
            raise BudgetViolation(f"{self.name} returned non-finite values")
        low, high = float(x_adv.min()), float(x_adv.max())
        if low < 0.0 or high > 1.0:
            raise BudgetViolation(f"{self.name} left [0, 1]: values in [{low}, {high}]")
        budget = self.budget
        if budget is None:
            return
        delta = (x_adv - x).flatten(1)
        if self.norm is Norm.LINF:
            worst = float(delta.abs().amax()) if delta.numel() else 0.0
            if worst > budget + _LINF_TOL:
                raise BudgetViolation(f"{self.name}: L∞ distance {worst} > eps {budget}")
        elif self.norm is Norm.L2:
            worst = float(delta.norm(dim=1).amax())
            if worst > budget * (1 + _L2_RTOL) + _LINF_TOL:
                raise BudgetViolation(f"{self.name}: L2 distance {worst} > eps {budget}")
        elif self.norm is Norm.L0:
            changed = int((delta != 0).sum(dim=1).amax())
            if changed > budget:
                raise BudgetViolation(f"{self.name}: {changed} elements changed > {budget}")


def _check_batch(name: str, x: Tensor, y: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise AttackError(f"{name}: x must be a floating-point tensor; got {_kind(x)}")
    if x.dim() < 2:
        raise AttackError(f"{name}: x must be a batch (N, ...); got shape {tuple(x.shape)}")
    if not isinstance(y, Tensor) or y.dtype not in (torch.int64, torch.int32):
        raise AttackError(f"{name}: y must be an integer tensor of labels; got {_kind(y)}")
    if y.shape != (x.shape[0],):
        raise AttackError(
            f"{name}: y must have shape ({x.shape[0]},) to match x; got {tuple(y.shape)}"
        )
    if x.numel() and not torch.isfinite(x).all():
        raise AttackError(f"{name}: x contains NaN or inf")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise AttackError(
            f"{name}: x must be in [0, 1]; got values in [{float(x.min())}, {float(x.max())}]"
            " (scale inputs to [0, 1]; put normalisation inside the model)"
        )


def _kind(v: object) -> str:
    if isinstance(v, Tensor):
        return f"tensor of {v.dtype} with shape {tuple(v.shape)}"
    return type(v).__name__
