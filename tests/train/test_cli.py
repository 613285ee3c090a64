"""``bastion train``: a config in, an artifact that ``bastion.models.load`` reads out; bad
input gets Bastion's one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion import models
from bastion.cli import app
from bastion.config import load_config
from bastion.errors import ConfigError, TrainingError

from .helpers import write_config

REPO = Path(__file__).resolve().parents[2]


def test_train_command_writes_a_loadable_artifact(tmp_path: Path) -> None:
    config = write_config(tmp_path, "method: fgsm_rs\n", epochs=1)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", "--config", str(config), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert f"model artifact: {out / 'model'}" in result.output.replace("\n", "")
    model = models.load(out / "model")
    assert models.read_spec(out / "model").extra["training"]["method"] == "fgsm_rs"
    assert sum(p.numel() for p in model.parameters()) > 0
    assert load_config(out / "config.yaml").recipe is not None  # the config is kept
    assert json.loads((out / "train.json").read_text())["plan"]["eps"] == pytest.approx(0.1)


def test_train_command_refuses_to_overwrite_a_run(tmp_path: Path) -> None:
    config = write_config(tmp_path, epochs=1)
    arguments = ["train", "--config", str(config), "--out", str(tmp_path / "r"), "--no-progress"]
    assert CliRunner().invoke(app, arguments).exit_code == 0
    again = CliRunner().invoke(app, arguments)
    assert isinstance(again.exception, TrainingError)
    assert "--resume" in str(again.exception)


def test_train_command_names_a_missing_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert isinstance(result.exception, ConfigError)
    assert "nope.yaml: file not found" in str(result.exception)


def test_the_example_train_config_is_valid() -> None:
    config = load_config(REPO / "examples" / "digits_train.yaml")
    assert config.recipe is not None
    assert config.recipe.method.value == "pgd_at"
