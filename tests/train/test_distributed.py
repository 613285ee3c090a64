"""``bastion train --nproc 2``: two CPU processes (gloo, DistributedSampler, each rank
attacking its own shard) end with identical weights and an accuracy comparable to one
process on the same global batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion import models
from bastion.cli import app
from bastion.config import load_config
from bastion.train import train_from_config, weights_digest

from .helpers import write_config

RECIPE = """\
method: pgd_at
eps: 0.1
attack: {steps: 2}
awp: {gamma: 0.005}
"""


@pytest.mark.slow
def test_two_ranks_end_identical_and_close_to_one_process(tmp_path: Path) -> None:
    config = write_config(tmp_path, RECIPE, epochs=4, limit=900, lr=0.01, arguments="{}")
    out = tmp_path / "ddp"
    result = CliRunner().invoke(
        app, ["train", "--config", str(config), "--out", str(out), "--nproc", "2", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "train.json").read_text())
    assert summary["world_size"] == 2
    first, second = summary["rank_digests"]
    assert first == second == summary["weights_sha256"]
    assert weights_digest(models.load(out / "model")) == first
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4  # rank 0 alone wrote, once per epoch

    single = train_from_config(load_config(config), out_dir=tmp_path / "one", progress=False)
    two, one = summary["final"], single.final
    assert two["samples"] == one["samples"]  # metrics summed over both shards
    print(
        f"\nval clean accuracy: 2 processes {two['val_clean_acc']:.3f}, 1 process "
        f"{one['val_clean_acc']:.3f}; val PGD accuracy (eps 0.1): 2 processes "
        f"{two['val_pgd_acc']:.3f}, 1 process {one['val_pgd_acc']:.3f}"
    )
    assert one["val_clean_acc"] > 0.6
    assert abs(two["val_clean_acc"] - one["val_clean_acc"]) <= 0.1
    assert abs(two["val_pgd_acc"] - one["val_pgd_acc"]) <= 0.15
