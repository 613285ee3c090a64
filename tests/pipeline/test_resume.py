"""A run killed anywhere leaves the registry consistent, and the next run finishes the job
without duplicate or half records."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from bastion.config import BastionConfig, parse_config
from bastion.errors import BastionError
from bastion.pipeline import run_pipeline
from bastion.registry import Registry, RunStatus


def _assert_one_clean_set_of_records(registry: Registry) -> None:
    assert [v.ref for v in registry.models.list("tiny")] == ["tiny:1", "tiny:2"]
    assert len(registry.evaluations.list("tiny:1")) == 1
    assert len(registry.evaluations.list("tiny:2")) == 1
    assert len(registry.gates.list("tiny:2")) == 1
    assert registry.audit.verify().ok


def _checkpoints(home: Path) -> list[Path]:
    return list((home / "cache" / "adversarial_training").glob("*/work/train/checkpoints/*.pt"))


@pytest.mark.slow
def test_sigkill_inside_training_then_rerun_resumes(
    raw: dict[str, Any], home: Path, tmp_path: Path
) -> None:
    raw["recipe"]["epochs"] = 12  # long enough to be caught between checkpoints
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("BASTION_DATABASE_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bastion.cli import main; main()",
            "run",
            str(config_file),
            "--no-progress",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        # epoch 0 is written at the start; a second file means training is under way
        while len(_checkpoints(home)) < 2:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"the run ended before it could be killed: {stderr[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("adversarial training never started")
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    config = parse_config(raw)
    with Registry.open(config.registry) as registry:
        (killed,) = registry.runs.list("tiny")
        assert killed.status is RunStatus.RUNNING  # nobody could close it
        stages = {s.name: s.status for s in registry.runs.stages(killed.run_id)}
        assert stages["baseline"] is RunStatus.SUCCEEDED
        assert stages["adversarial_training"] is RunStatus.RUNNING
        assert registry.models.list("tiny") == []  # nothing registered half-way

        log = io.StringIO()
        result = run_pipeline(
            config, registry=registry, console=Console(file=log, width=200), progress=False
        )
        assert result.resumed
        assert result.run_id == killed.run_id
        assert result.status("baseline") is RunStatus.REUSED
        assert result.status("adversarial_training") is RunStatus.SUCCEEDED
        assert "resuming interrupted training" in log.getvalue()
        (run,) = registry.runs.list("tiny")
        assert run.status is RunStatus.SUCCEEDED
        recorded = {s.name: s.status for s in registry.runs.stages(run.run_id)}
        assert RunStatus.RUNNING not in recorded.values()
        _assert_one_clean_set_of_records(registry)


@pytest.mark.slow
def test_crash_between_registry_writes_is_finished_by_the_next_run(
    config: BastionConfig, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full (simulated) while recording the gate decision")

    quiet = Console(file=io.StringIO(), width=200)
    with monkeypatch.context() as patch:
        patch.setattr(registry.gates, "record", crash)
        with pytest.raises(BastionError, match="disk full"):
            run_pipeline(config, registry=registry, console=quiet, progress=False)
    (failed,) = registry.runs.list("tiny")
    assert failed.status is RunStatus.FAILED
    stages = {s.name: s for s in registry.runs.stages(failed.run_id)}
    assert stages["register"].status is RunStatus.FAILED
    assert "disk full" in (stages["register"].error or "")
    # the versions and evaluations written before the crash are whole rows
    assert len(registry.models.list("tiny")) == 2
    assert registry.gates.list("tiny:2") == []

    result = run_pipeline(config, registry=registry, console=quiet, progress=False)
    assert not result.resumed  # a failed run is closed; a new one starts
    assert result.status("adversarial_training") is RunStatus.REUSED
    _assert_one_clean_set_of_records(registry)


def test_a_second_concurrent_run_is_refused(config: BastionConfig, home: Path) -> None:
    import fcntl

    (home / "locks").mkdir(parents=True)
    with (home / "locks" / "tiny.lock").open("w") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(BastionError, match="another `bastion run`"):
            run_pipeline(config, console=Console(file=io.StringIO()), progress=False)
