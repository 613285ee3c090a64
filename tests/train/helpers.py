"""Helpers of the training tests: a narrow small_cnn, exact weight comparison, tiny configs."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bastion import models

#: a narrow small_cnn: the loop's behaviour, not the model's accuracy, is under test
TINY_ARGS: dict[str, Any] = {"channels": [4, 8], "hidden": 16}


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return models.build("small_cnn", input_shape=(1, 8, 8), num_classes=10, **TINY_ARGS)


def state_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def write_config(
    folder: Path,
    recipe: str = "",
    *,
    epochs: int = 3,
    limit: int = 400,
    lr: float = 0.003,
    arguments: str = "{channels: [4, 8], hidden: 16}",
) -> Path:
    """A Bastion YAML for a tiny digits run; ``recipe`` is the YAML body of its recipe."""
    body = textwrap.dedent(
        f"""\
        name: tiny
        data: {{name: digits, seed: 0, limit: {limit}}}
        model: {{architecture: small_cnn, arguments: {arguments}}}
        train: {{epochs: {epochs}, batch_size: 64, lr: {lr}, seed: 0}}
        threat_model:
          image:
            attacks:
              - {{name: pgd, params: {{eps: 0.1, steps: 5}}}}
        """
    )
    if recipe:
        body += "recipe:\n" + textwrap.indent(textwrap.dedent(recipe), "  ")
    path = folder / "config.yaml"
    path.write_text(body)
    return path
