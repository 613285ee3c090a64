"""What every defence layer declares: its stage, and how gradients flow through it.

A defence that an evaluation cannot attack through is a defence nobody can measure, so each
layer states its *gradient story* (Athalye et al. 2018, "Obfuscated Gradients Give a False
Sense of Security"):

* ``NONE`` — the layer acts on the HTTP request (key, size, rate), never on the input values;
  an attacker's gradient does not pass through it at all.
* ``EXACT`` — the layer is a differentiable function of the input or logits (temperature
  scaling, ensemble averaging); attack straight through it.
* ``BPDA`` — the layer is not usefully differentiable (quantisation, median); attack it with
  the Backward Pass Differentiable Approximation: forward through the layer, backward as the
  identity. Such layers provide ``differentiable(x)`` implementing exactly that.
* ``DETECTOR`` — the layer does not change the answer but raises a flag; an adaptive attacker
  must also keep the (differentiable) detector score under its threshold, so its score
  function is exposed for use in the attack loss (Carlini & Wagner 2017).

A layer that refuses a request raises :class:`bastion.errors.RejectionError`, which the HTTP
layer maps to its status code with the stable ``code`` string.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = ["Gradient", "Stage"]


class Gradient(StrEnum):
    """How an attack computes gradients through a layer (see the module docstring)."""

    NONE = "none"
    EXACT = "exact"
    BPDA = "bpda"
    DETECTOR = "detector"


class Stage(IntEnum):
    """Where a layer runs; stages run in this order for each request."""

    REQUEST = 0
    INPUT = 1
    OUTPUT = 2
