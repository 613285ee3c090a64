"""Input squeezing: remove the fine detail that adversarial perturbations live in.

Feature squeezing (Xu, Evans & Qi, NDSS 2018) reduces the search space of an attacker by
coarsening the input: bit-depth reduction rounds every value to ``2**bits`` levels; a median
filter replaces each value by the median of its ``size x size`` neighbourhood (scipy's
convention: window anchored so that a 2x2 window covers the pixel and its upper-left
neighbours, edges replicated). Both work on batches of (N, C, H, W) tensors in [0, 1].

Gradient story: ``BPDA``. Rounding has zero gradient almost everywhere and the median a
gradient that only selects one pixel, so attacking through them directly looks robust and is
not (Athalye et al. 2018). ``differentiable(x)`` returns the squeezed value in the forward
pass and the identity in the backward pass — the approximation evaluations must use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from bastion.defend.base import Gradient, Stage

__all__ = ["BitDepth", "MedianFilter", "Squeeze", "Squeezer"]


class Squeezer:
    """One squeezing function with its BPDA surrogate."""

    label: str = "squeezer"

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def differentiable(self, x: Tensor) -> Tensor:
        """Forward: ``self(x)``; backward: identity (BPDA)."""
        return x + (self(x) - x).detach()


class BitDepth(Squeezer):
    """Round every value in [0, 1] to one of ``2**bits`` evenly spaced levels."""

    def __init__(self, *, bits: int) -> None:
        if not 1 <= bits <= 16:
            raise ValueError(f"bits must be in [1, 16]; got {bits}")
        self.bits = bits
        self.label = f"bit_depth_{bits}"

    def __call__(self, x: Tensor) -> Tensor:
        levels = float(2**self.bits - 1)
        return torch.round(x * levels) / levels


class MedianFilter(Squeezer):
    """Median over a ``size x size`` window per channel (upper median for even sizes)."""

    def __init__(self, *, size: int) -> None:
        if size < 2:
            raise ValueError(f"size must be at least 2; got {size}")
        self.size = size
        self.label = f"median_{size}"

    def __call__(self, x: Tensor) -> Tensor:
        k = self.size
        before, after = k // 2, (k - 1) // 2
        padded = F.pad(x, (before, after, before, after), mode="replicate")
        windows = padded.unfold(2, k, 1).unfold(3, k, 1)  # N, C, H, W, k, k
        flat = windows.reshape(*windows.shape[:4], k * k)
        return flat.sort(dim=-1).values[..., (k * k) // 2]


class Squeeze:
    """The ``squeeze`` layer: apply the configured squeezers in order to every input."""

    name: ClassVar[str] = "squeeze"
    stage: ClassVar[Stage] = Stage.INPUT
    gradient: ClassVar[Gradient] = Gradient.BPDA

    def __init__(self, *, squeezers: Sequence[Squeezer]) -> None:
        if not squeezers:
            raise ValueError("at least one squeezer is needed")
        self.squeezers = tuple(squeezers)

    @classmethod
    def from_options(cls, *, bit_depth: int | None, median_size: int | None) -> Squeeze:
        chain: list[Squeezer] = []
        if bit_depth is not None:
            chain.append(BitDepth(bits=bit_depth))
        if median_size is not None:
            chain.append(MedianFilter(size=median_size))
        return cls(squeezers=chain)

    def __call__(self, x: Tensor) -> Tensor:
        for squeezer in self.squeezers:
            x = squeezer(x)
        return x

    def differentiable(self, x: Tensor) -> Tensor:
        return x + (self(x) - x).detach()
