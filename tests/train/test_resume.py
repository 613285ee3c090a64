"""A run killed with SIGKILL in the middle of an epoch, continued with ``bastion train
--resume``, ends with exactly the weights of an uninterrupted run under the same seed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion import models
from bastion.cli import app
from bastion.config import load_config
from bastion.train import checkpoint as ckpt
from bastion.train import train_from_config

from .helpers import state_equal, write_config

CHILD = Path(__file__).with_name("_killed_child.py")

RECIPE = """\
method: pgd_at
attack: {steps: 2}
exposure: {epochs: 2, eps_start: 0.02, adv_fraction_start: 0.5}
lr_schedule: {kind: cosine}
awp: {gamma: 0.01}
ema: {decay: 0.9}
"""


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_the_uninterrupted_run(tmp_path: Path) -> None:
    config = write_config(tmp_path, RECIPE, epochs=3)
    reference = train_from_config(load_config(config), out_dir=tmp_path / "ref", progress=False)

    out, marker = tmp_path / "run", tmp_path / "killed-here"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(config), str(out), str(marker), "1", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            if child.poll() is not None:
                pytest.fail(f"the child exited early:\n{child.stderr.read().decode()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                pytest.fail("the child never reached epoch 2, batch 2")
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    # killed in epoch 2: the newest state on disk is the end of epoch 1
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["epoch-0000.pt", "epoch-0001.pt"]
    assert not (out / "model").exists()

    result = CliRunner().invoke(
        app, ["train", "--config", str(config), "--out", str(out), "--resume", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "model artifact" in result.output
    resumed = models.load(out / "model")
    assert state_equal(resumed, models.load(tmp_path / "ref" / "model"))
    assert state_equal(resumed, reference.model)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
