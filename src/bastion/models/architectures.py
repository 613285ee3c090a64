"""Reference architectures by name, so an artifact's JSON can rebuild its own network.

A builder takes the per-sample ``input_shape``, ``num_classes`` and its own keyword
arguments. Every built model maps inputs in [0, 1] to logits and exposes ``features(x)``
(penultimate activations, ``(N, D)``) and ``head`` (the last ``nn.Linear``), with
``forward(x) == head(features(x))``: detectors and calibration read the features.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from bastion.errors import ModelError

__all__ = ["Builder", "architectures", "build", "register_architecture"]

#: ``builder(*, input_shape, num_classes, **arguments) -> nn.Module``
Builder = Callable[..., nn.Module]

_BUILDERS: dict[str, Builder] = {}


def register_architecture(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make :func:`build` (and artifact loading) know ``name``."""

    def decorator(builder: Builder) -> Builder:
        existing = _BUILDERS.get(name)
        if existing is not None and existing.__qualname__ != builder.__qualname__:
            raise ValueError(f"an architecture named {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorator


def architectures() -> list[str]:
    """The registered architecture names, sorted."""
    return sorted(_BUILDERS)


def build(
    architecture: str, *, input_shape: tuple[int, ...], num_classes: int, **arguments: Any
) -> nn.Module:
    """A freshly initialised ``architecture`` for ``input_shape`` and ``num_classes``.

    Raises :class:`~bastion.errors.ModelError` for an unknown name, an unknown argument or a
    shape the architecture cannot take.
    """
    builder = _BUILDERS.get(architecture)
    if builder is None:
        raise ModelError(
            f"unknown architecture {architecture!r}; known: {', '.join(architectures())}"
        )
    accepted = [
        p.name
        for p in inspect.signature(builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("input_shape", "num_classes")
    ]
    unknown = sorted(set(arguments) - set(accepted))
    if unknown:
        raise ModelError(
            f"unknown argument {unknown[0]!r} for architecture {architecture!r} "
            f"(accepted: {', '.join(accepted) or 'none'})"
        )
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ModelError(f"num_classes must be an integer >= 2; got {num_classes!r}")
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ModelError(f"input_shape must be positive integers; got {input_shape!r}")
    return builder(input_shape=shape, num_classes=num_classes, **arguments)
