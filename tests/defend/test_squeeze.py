"""Squeezers: what they compute, and that their BPDA surrogate passes gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import median_filter

from bastion.defend.base import Gradient
from bastion.defend.squeeze import BitDepth, MedianFilter, Squeeze


def test_bit_depth_rounds_to_levels() -> None:
    x = torch.tensor([0.0, 0.2, 0.26, 0.74, 1.0])
    assert BitDepth(bits=1)(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    out = BitDepth(bits=2)(x)
    assert torch.allclose(out * 3, torch.round(out * 3))
    with pytest.raises(ValueError, match="bits"):
        BitDepth(bits=0)


@pytest.mark.parametrize("size", [2, 3])
def test_median_filter_matches_scipy(size: int) -> None:
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(size))
    ours = MedianFilter(size=size)(x).numpy()
    theirs = np.stack([median_filter(img[0], size=size, mode="nearest")[None] for img in x.numpy()])
    np.testing.assert_allclose(ours, theirs, atol=1e-7)


def test_bpda_surrogate_is_squeeze_forward_identity_backward() -> None:
    layer = Squeeze.from_options(bit_depth=3, median_size=2)
    assert layer.gradient is Gradient.BPDA
    x = torch.rand(1, 1, 8, 8, requires_grad=True)
    out = layer.differentiable(x)
    torch.testing.assert_close(out.detach(), layer(x.detach()), rtol=0, atol=1e-6)
    out.sum().backward()  # type: ignore[no-untyped-call]
    assert x.grad is not None
    assert torch.equal(x.grad, torch.ones_like(x))
