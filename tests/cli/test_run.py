"""``bastion run``, ``bastion gate`` and ``bastion report`` from the command line: the exit
codes CI relies on, and clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bastion.cli import app
from bastion.cli.run import parse_overrides
from bastion.errors import ConfigError, DataError

RUNNER = CliRunner()


def _pipeline(home: Path) -> dict[str, Any]:
    return {
        "name": "tiny",
        "data": {"name": "digits", "seed": 0, "limit": 300, "val_fraction": 0.15},
        "model": {"architecture": "small_cnn", "arguments": {"channels": [4, 8], "hidden": 16}},
        "train": {"epochs": 5, "batch_size": 32, "lr": 0.02, "seed": 0},
        "threat_model": {
            "name": "tiny-linf",
            "image": {"attacks": [{"name": "pgd", "params": {"eps": 0.1, "steps": 2}}]},
        },
        "evaluation": {"max_samples": 40, "latency_samples": 3},
        "gate": {"min_clean_accuracy": 0.2, "forbidden_flags": []},
        "registry": {"home": str(home)},
    }


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BASTION_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # gate/report without --config use ./.bastion
    return tmp_path


@pytest.mark.slow
def test_run_then_gate_and_report(workdir: Path) -> None:
    config = workdir / "pipeline.yaml"
    config.write_text(yaml.safe_dump(_pipeline(workdir / ".bastion")))
    summary = workdir / "summary.json"
    ran = RUNNER.invoke(
        app,
        ["run", str(config), "--no-progress", "--set", "train.epochs=4", "--summary", str(summary)],
    )
    assert ran.exit_code == 0, ran.output
    written = json.loads(summary.read_text())
    assert written["candidate"] == "tiny:1"
    assert written["stages"]["adversarial_training"] == "skipped"  # no recipe in this file
    report = Path(ran.output.strip().splitlines()[-1].removeprefix("report: "))
    assert report.is_file()
    assert report.name == "report.html"

    passed = RUNNER.invoke(app, ["gate", "--candidate", "tiny:1"])
    assert passed.exit_code == 0, passed.output
    assert "PASS tiny:1" in passed.output
    assert "clean accuracy" in passed.output

    strict = _pipeline(workdir / ".bastion")
    strict["gate"] = {"min_clean_accuracy": 0.999, "min_robust_accuracy": 0.999}
    strict_file = workdir / "strict.yaml"
    strict_file.write_text(yaml.safe_dump(strict))
    failed = RUNNER.invoke(app, ["gate", "--candidate", "tiny:1", "--config", str(strict_file)])
    assert failed.exit_code == 1, failed.output
    assert "FAIL tiny:1" in failed.output
    assert failed.output.count("FAIL ") >= 3  # the verdict line and both failed checks

    # through the real entry point too: CI reads the process's exit status
    entry = [sys.executable, "-c", "from bastion.cli import main; main()"]
    process = subprocess.run(
        [*entry, "gate", "--candidate", "tiny:1", "--config", str(strict_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 1, process.stderr

    missing = RUNNER.invoke(app, ["gate", "--candidate", "tiny:7"])
    assert missing.exit_code == 2
    assert "NotFoundError" in missing.output

    out = workdir / "again"
    rendered = RUNNER.invoke(app, ["report", "tiny:1", "--out", str(out)])
    assert rendered.exit_code == 0, rendered.output
    assert (out / "report.html").is_file()
    assert "tiny:1" in (out / "report.md").read_text()


def test_data_path_overrides_the_file(workdir: Path) -> None:
    raw = _pipeline(workdir / ".bastion")
    raw["data"] = {"name": "mnist", "path": "../shared/data/mnist"}
    config = workdir / "mnist.yaml"
    config.write_text(yaml.safe_dump(raw))
    nowhere = workdir / "no-such-folder"
    result = RUNNER.invoke(app, ["run", str(config), "--data-path", str(nowhere)])
    assert isinstance(result.exception, DataError)
    assert str(nowhere) in str(result.exception)


def test_bad_override_names_the_problem() -> None:
    assert parse_overrides(["train.epochs=3", "data.path=x", "recipe=null"]) == {
        "train.epochs": 3,
        "data.path": "x",
        "recipe": None,
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["train.epochs"])


def test_unknown_key_in_override_is_a_config_error(workdir: Path) -> None:
    config = workdir / "pipeline.yaml"
    config.write_text(yaml.safe_dump(_pipeline(workdir / ".bastion")))
    result = RUNNER.invoke(app, ["run", str(config), "--set", "train.epoch=3"])
    assert isinstance(result.exception, ConfigError)
    assert "train.epoch" in str(result.exception)
