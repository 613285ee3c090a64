"""A small convolutional network sized for MNIST (28x28) and the 8x8 digits alike.

It is trained many times (tests, the demo, adversarial training), so it is kept to two
convolution blocks and one hidden dense layer: fast on a CPU, yet above 97 % clean accuracy
on digits and 98 % on MNIST after a few epochs. There is no batch norm, so train and eval
mode compute the same function and attacks see one model.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from bastion.errors import ModelError
from bastion.models.architectures import register_architecture

__all__ = ["SmallCNN", "small_cnn"]

_MIN_POOLED_SIDE = 4  # pool only while the map stays at least 4x4 (8x8 input: one pool)


class SmallCNN(nn.Module):
    """``[conv3x3 -> ReLU -> (maxpool2)] x len(channels)``, flatten, ``Linear -> ReLU``, head.

    A block pools when its output would still be at least 4x4: 28x28 inputs pool twice
    (28 -> 14 -> 7), 8x8 inputs once (8 -> 4 -> 4); padding keeps sizes otherwise.
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, int, int],
        num_classes: int,
        channels: Sequence[int],
        hidden: int,
    ):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        in_channels, height, width = input_shape
        layers: list[nn.Module] = []
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
            if min(height, width) // 2 >= _MIN_POOLED_SIDE:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            in_channels = out_channels
        layers += [
            nn.Flatten(),
            nn.Linear(in_channels * height * width, hidden),
            nn.ReLU(),
        ]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations ``(N, hidden)``."""
        out: Tensor = self.body(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.features(x))
        return logits


@register_architecture("small_cnn")
def small_cnn(
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: Sequence[int] = (16, 32),
    hidden: int = 128,
) -> SmallCNN:
    """``channels``: output channels per conv block; ``hidden``: width of the dense layer."""
    if len(input_shape) != 3:
        raise ModelError(
            f"small_cnn needs image inputs (C, H, W); got input_shape {tuple(input_shape)}"
        )
    if min(input_shape[1:]) < 2:
        raise ModelError(f"small_cnn needs images of at least 2x2; got {tuple(input_shape)}")
    if (
        isinstance(channels, int | str)
        or not channels
        or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels)
    ):
        raise ModelError(
            f"small_cnn argument 'channels' must be a non-empty list of positive integers; "
            f"got {channels!r}"
        )
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden <= 0:
        raise ModelError(f"small_cnn argument 'hidden' must be a positive integer; got {hidden!r}")
    c, h, w = (int(d) for d in input_shape)
    return SmallCNN(
        input_shape=(c, h, w), num_classes=num_classes, channels=list(channels), hidden=hidden
    )
