"""Reference architectures: both input sizes, features/head consistency, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import bastion.models as models_api
from bastion import models
from bastion.errors import ModelError

CASES = [
    ("small_cnn", (1, 8, 8), {}),
    ("small_cnn", (1, 28, 28), {}),
    ("small_cnn", (3, 12, 10), {"channels": [8, 8, 8], "hidden": 32}),
    ("mlp", (1, 8, 8), {}),
    ("mlp", (1, 28, 28), {"hidden": [64]}),
    ("mlp", (14,), {"hidden": []}),
]


def test_public_surface() -> None:
    assert models.architectures() == ["mlp", "small_cnn"]
    expected = {"build", "architectures", "save", "load", "read_spec", "ModelSpec", "update_extra"}
    assert expected <= set(models_api.__all__)


@pytest.mark.parametrize(("architecture", "shape", "arguments"), CASES)
def test_logits_are_head_of_features(architecture: str, shape: tuple[int, ...], arguments) -> None:
    torch.manual_seed(0)
    model = models.build(architecture, input_shape=shape, num_classes=7, **arguments)
    x = torch.rand(5, *shape)
    logits = model(x)
    features = model.features(x)
    assert logits.shape == (5, 7)
    assert features.ndim == 2
    assert features.shape[0] == 5
    assert isinstance(model.head, nn.Linear)
    assert model.head.in_features == features.shape[1]
    torch.testing.assert_close(model.head(features), logits)


@pytest.mark.parametrize(("architecture", "shape", "arguments"), CASES)
def test_input_gradients_flow(architecture: str, shape: tuple[int, ...], arguments) -> None:
    torch.manual_seed(0)
    model = models.build(architecture, input_shape=shape, num_classes=3, **arguments)
    x = torch.rand(4, *shape, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


def test_small_cnn_pools_28x28_twice_and_8x8_once() -> None:
    pools = {}
    for side in (28, 8):
        model = models.build("small_cnn", input_shape=(1, side, side), num_classes=10)
        pools[side] = sum(isinstance(m, nn.MaxPool2d) for m in model.modules())
        flat = next(m for m in model.modules() if isinstance(m, nn.Linear))
        spatial = side // 2 ** pools[side]
        assert flat.in_features == 32 * spatial * spatial
    assert pools == {28: 2, 8: 1}


def test_small_cnn_stays_small() -> None:
    # Trained many times on CPU (tests, the demo, adversarial training): keep it that size.
    for side in (8, 28):
        model = models.build("small_cnn", input_shape=(1, side, side), num_classes=10)
        assert sum(p.numel() for p in model.parameters()) < 250_000


def test_unknown_architecture() -> None:
    with pytest.raises(ModelError, match=r"unknown architecture 'resnet'; known: mlp, small_cnn"):
        models.build("resnet", input_shape=(1, 8, 8), num_classes=10)


def test_unknown_argument_lists_the_accepted_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown argument 'depth'.*accepted: channels, hidden"):
        models.build("small_cnn", input_shape=(1, 8, 8), num_classes=10, depth=3)


@pytest.mark.parametrize(
    ("architecture", "shape", "arguments", "message"),
    [
        ("small_cnn", (64,), {}, r"needs image inputs \(C, H, W\)"),
        ("small_cnn", (1, 1, 8), {}, "at least 2x2"),
        ("small_cnn", (1, 8, 8), {"channels": []}, "'channels' must be a non-empty list"),
        ("small_cnn", (1, 8, 8), {"channels": 16}, "'channels' must be a non-empty list"),
        ("small_cnn", (1, 8, 8), {"hidden": 0}, "'hidden' must be a positive integer"),
        ("mlp", (10,), {"hidden": [32, -1]}, "'hidden' must be a list of positive integers"),
        ("mlp", (10,), {"hidden": 32}, "'hidden' must be a list of positive integers"),
        ("mlp", (0,), {}, "input_shape must be positive integers"),
    ],
)
def test_bad_arguments_are_model_errors(architecture, shape, arguments, message) -> None:
    with pytest.raises(ModelError, match=message):
        models.build(architecture, input_shape=shape, num_classes=10, **arguments)


def test_one_class_is_refused() -> None:
    with pytest.raises(ModelError, match=r"num_classes must be an integer >= 2"):
        models.build("mlp", input_shape=(4,), num_classes=1)
