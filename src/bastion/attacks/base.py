"""The attack base classes: they own the plumbing so each attack module holds only its
algorithm.

Every attack is a small class with a registry ``name``, a ``version``, a ``modality`` and a
parameter table; it is built with keyword arguments only (validated against the table) and
called as ``attack(model, x, y) -> x_adv``. The image base call additionally

* checks that ``x`` is a float batch in [0, 1] and ``y`` matching integer labels,
* puts the model in eval mode for the attack and restores every submodule's previous mode
  afterwards,
* draws all randomness from a private generator seeded by the ``seed`` parameter, so that the
  same attack on the same inputs gives the same result and global RNG state is untouched,
* never writes to ``x`` (the algorithm gets a detached copy) nor to the model's parameters or
  their ``.grad`` (gradients are taken with ``torch.autograd.grad`` w.r.t. the input only),
* verifies the result is inside the budget and inside [0, 1], raising
  :class:`~bastion.errors.BudgetViolation` otherwise.

Cost is counted in *gradient passes per sample* (one forward plus one backward); a
forward-only query counts :data:`FORWARD_COST` of one, so that a suite can be ordered
cheapest first across gradient and score-based attacks alike.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from bastion.attacks.params import Interval, Param
from bastion.errors import AttackError, BudgetViolation, ParameterError

__all__ = [
    "FORWARD_COST",
    "Attack",
    "ImageAttack",
    "Modality",
    "Model",
    "Norm",
    "UnknownParameterError",
]

#: Anything that maps a batch of inputs in [0, 1] to logits.
Model = nn.Module | Callable[[Tensor], Tensor]

_LINF_TOL = 1e-6
_L2_RTOL = 1e-4

#: A forward-only query measured in gradient passes (forward + backward ≈ 3 forwards).
FORWARD_COST = 1.0 / 3.0


class UnknownParameterError(ParameterError):
    """A keyword that is not in the attack's parameter table (usually a typo).

    ``pgd has no parameter 'epss' (did you mean 'eps'?); its parameters are eps, loss, ...``
    ``param`` is the unknown keyword and ``expected`` the list of known ones, as for any
    :class:`~bastion.errors.ParameterError`.
    """

    def __init__(self, owner: str, param: str, known: Iterable[str]):
        names = sorted(known)
        close = difflib.get_close_matches(param, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.owner = owner
        self.param = param
        self.expected = "one of " + ", ".join(names)
        self.got = param
        AttackError.__init__(
            self, f"{owner} has no parameter {param!r}{hint}; its parameters are {', '.join(names)}"
        )


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
            raise UnknownParameterError(self.name, unknown[0], self.params)
        self._values: dict[str, Any] = {}
        for key, spec in self.params.items():
            value = kwargs.get(key, spec.default)
            if not spec.constraint.accepts(value):
                raise ParameterError(self.name, key, spec.constraint.describe(), value)
            self._values[key] = value
        self._check()

    def _check(self) -> None:  # noqa: B027  (an optional hook, empty by design)
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
        """Gradient passes per sample at most (forward-only queries count
        :data:`FORWARD_COST`), to order a suite cheapest first."""
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
        """The adversarial batch for ``(x, y)``: same shape and dtype as ``x``, in [0, 1] and
        inside the budget. ``x`` is (N, ...) floats in [0, 1]; ``y`` (N,) integer labels."""
        _check_batch(self.name, x, y)
        # every submodule's own flag: a model may train with some layers frozen in eval mode
        modes = [(m, m.training) for m in model.modules()] if isinstance(model, nn.Module) else []
        # Autograd must work even when the caller evaluates under inference mode.
        with torch.inference_mode(False):
            x_own = x.detach().clone()
            if x.shape[0] == 0:
                return x_own
            y_own = y.detach().to(torch.int64).clone()
            if isinstance(model, nn.Module):
                model.eval()
            try:
                generator = torch.Generator(device=x.device)
                generator.manual_seed(int(self.seed))
                x_adv = self._perturb(model, x_own, y_own, generator)
            finally:  # the flags exactly as they were, whatever train() overrides do
                for m, training in modes:
                    m.training = training
            x_adv = x_adv.detach()
        self.verify(x, x_adv)
        return x_adv

    @abstractmethod
    def _perturb(self, model: Model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        """The algorithm. ``x`` is a private copy; return the adversarial batch."""

    def budget_for(self, x: Tensor) -> float | None:
        """The budget that applies to the batch ``x`` (an L0 budget in pixels grows with
        the number of channels); :attr:`budget` unless an attack says otherwise."""
        return self.budget

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
        budget = self.budget_for(x)
        if budget is None or x.shape[0] == 0:
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
    if y.device != x.device:
        raise AttackError(f"{name}: x is on {x.device} but y is on {y.device}")
    if y.numel() and int(y.min()) < 0:
        raise AttackError(f"{name}: labels must be >= 0; got {int(y.min())}")
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
