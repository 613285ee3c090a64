"""Models that break an evaluation's assumptions on purpose, built around ``digits_cnn``.

Each wrapper changes exactly one thing (outputs, gradients, randomness) so that a sanity
check that fires on it and not on ``digits_cnn`` itself is shown to detect that one thing.
They never modify the shared ``digits_cnn``: they only call it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from bastion.config import ThreatModel


class _ZeroGrad(torch.autograd.Function):
    """Identity forward, zero backward: the gradient is masked, the function is not."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return torch.zeros_like(grad)


class _NanGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad * float("nan")


class _RaisingGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        raise RuntimeError("this model cannot be differentiated")


class Wrapped(nn.Module):
    """``inner(pre(x))`` followed by ``post`` on the outputs."""

    def __init__(
        self,
        inner: nn.Module,
        pre: Callable[[Tensor], Tensor] = lambda x: x,
        post: Callable[[Tensor], Tensor] = lambda z: z,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.pre = pre
        self.post = post

    def forward(self, x: Tensor) -> Tensor:
        return self.post(self.inner(self.pre(x)))


def _noisy(x: Tensor) -> Tensor:
    # active in eval mode too, like a defence that randomises every query
    return (x + 0.05 * torch.randn_like(x)).clamp(0.0, 1.0)


@pytest.fixture
def softmax_model(digits_cnn: nn.Module) -> nn.Module:
    return Wrapped(digits_cnn, post=lambda z: torch.softmax(z, dim=1))


@pytest.fixture
def step_model(digits_cnn: nn.Module) -> nn.Module:
    """Inputs quantised to 4 levels with ``torch.round``: a step function, gradient zero."""
    return Wrapped(digits_cnn, pre=lambda x: torch.round(x * 3) / 3)


@pytest.fixture
def masked_model(digits_cnn: nn.Module) -> nn.Module:
    """The same function as ``digits_cnn``, with its input gradient zeroed by autograd."""
    return Wrapped(digits_cnn, pre=_ZeroGrad.apply)


@pytest.fixture
def nan_grad_model(digits_cnn: nn.Module) -> nn.Module:
    return Wrapped(digits_cnn, pre=_NanGrad.apply)


@pytest.fixture
def raising_grad_model(digits_cnn: nn.Module) -> nn.Module:
    return Wrapped(digits_cnn, pre=_RaisingGrad.apply)


@pytest.fixture
def noisy_model(digits_cnn: nn.Module) -> nn.Module:
    return Wrapped(digits_cnn, pre=_noisy)


@pytest.fixture
def threat() -> Callable[..., ThreatModel]:
    """``threat(("fgsm", {"eps": 0.1}), ...)`` -> a threat model with those image attacks."""

    def make(*attacks: tuple[str, dict[str, Any]]) -> ThreatModel:
        return ThreatModel.model_validate(
            {"image": {"attacks": [{"name": n, "params": p} for n, p in attacks]}}
        )

    return make
