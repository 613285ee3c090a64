"""A fully connected network: the smallest reference model, for tabular rows and quick tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from bastion.errors import ModelError
from bastion.models.architectures import register_architecture

__all__ = ["MLP", "mlp"]


class MLP(nn.Module):
    """Flatten, then ``Linear -> ReLU`` per hidden size; ``head`` maps to the logits."""

    def __init__(self, *, input_shape: tuple[int, ...], num_classes: int, hidden: Sequence[int]):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations ``(N, hidden[-1])`` (the flat input if no hidden layer)."""
        out: Tensor = self.body(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.features(x))
        return logits


@register_architecture("mlp")
def mlp(
    *, input_shape: tuple[int, ...], num_classes: int, hidden: Sequence[int] = (256, 128)
) -> MLP:
    """``hidden``: sizes of the hidden layers, e.g. ``[256, 128]`` (``[]``: linear model)."""
    if isinstance(hidden, int | str) or not all(
        isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden
    ):
        raise ModelError(
            f"mlp argument 'hidden' must be a list of positive integers; got {hidden!r}"
        )
    return MLP(input_shape=input_shape, num_classes=num_classes, hidden=list(hidden))
