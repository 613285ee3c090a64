"""Declared parameter constraints: each attack lists its parameters in a table and the base
class validates keyword arguments against it, so every error names the parameter, what is
allowed and what was given (the scikit-learn habit)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["Boolean", "Constraint", "Interval", "OneOf", "Optional", "Param"]


class Constraint(Protocol):
    def accepts(self, value: Any) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` in an interval; ``None`` bounds are open to infinity."""

    kind: type[int] | type[float]
    low: float | None = None
    high: float | None = None
    closed: Literal["both", "left", "right", "neither"] = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if self.kind is float and not isinstance(value, int | float):
            return False
        v = float(value)
        if not math.isfinite(v):
            return False
        low_open = self.closed in ("right", "neither")
        high_open = self.closed in ("left", "neither")
        if self.low is not None and (v < self.low or (v == self.low and low_open)):
            return False
        return not (self.high is not None and (v > self.high or (v == self.high and high_open)))

    def describe(self) -> str:
        name = "an int" if self.kind is int else "a float"
        if self.low is None and self.high is None:
            return name
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else _fmt(self.low)
        high = "inf" if self.high is None else _fmt(self.high)
        return f"{name} in {left}{low}, {high}{right}"


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""

    values: Sequence[Any]

    def accepts(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Boolean:
    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "a bool"


@dataclass(frozen=True)
class Optional:
    """``None`` or a value accepted by ``inner``."""

    inner: Constraint

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def describe(self) -> str:
        return f"None or {self.inner.describe()}"


@dataclass(frozen=True)
class Param:
    """One entry of an attack's parameter table."""

    constraint: Constraint
    default: Any
    doc: str = ""
