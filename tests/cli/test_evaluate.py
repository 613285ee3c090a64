"""``bastion evaluate``: a real run writes the record; a bad config exits 1 naming the field."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn
from typer.testing import CliRunner

from bastion import models
from bastion.cli import app, main
from bastion.evaluate import EvaluationRecord

ATTACKS: list[dict[str, Any]] = [
    {"name": "fgsm", "params": {"eps": 0.1}},
    {"name": "pgd", "params": {"eps": 0.3, "steps": 5}, "label": "pgd-0.3"},
]


def _config(folder: Path, attacks: list[dict[str, Any]]) -> Path:
    path = folder / "bastion.yaml"
    content = {
        "data": {"name": "digits", "seed": 0},
        "threat_model": {"name": "cli-test", "image": {"attacks": attacks}},
        "evaluation": {"latency_samples": 5},
    }
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.fixture
def model_dir(digits_cnn_dir: Path, tmp_path: Path) -> Path:
    """A private copy: the default output goes next to the model."""
    return Path(shutil.copytree(digits_cnn_dir, tmp_path / "model"))


def test_evaluate_writes_the_record_next_to_the_model(model_dir: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, ATTACKS)
    result = CliRunner().invoke(
        app,
        ["evaluate", "--model", str(model_dir), "--config", str(config), "--max-samples", "40"],
    )
    assert result.exit_code == 0, result.output
    record = EvaluationRecord.load(model_dir / "evaluation.json")
    assert record.n_samples == 40
    assert record.threat_model == "cli-test"
    assert [a.label for a in record.attacks] == ["fgsm", "pgd-0.3"]
    assert record.config.max_samples == 40
    for text in ("clean", "fgsm", "pgd-0.3", "worst case", "ECE", "latency", "flags"):
        assert text in result.stdout
    assert f"{100 * record.worst_case_accuracy:.2f}%" in result.stdout
    assert "evaluation.json" in result.stdout


class _ZeroGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(grad)


class _Masked(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(_ZeroGrad.apply(x))
        return out


def test_evaluate_writes_to_out_and_shows_flags(
    digits_cnn_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the loaded model gets its input gradient masked: the flags must reach the table
    load = models.load
    monkeypatch.setattr(models, "load", lambda folder: _Masked(load(folder)))
    attacks = [
        {"name": "pgd", "params": {"eps": 0.3, "steps": 5, "random_start": False}},
        {"name": "square", "params": {"eps": 0.3, "n_queries": 60}},
    ]
    config = _config(tmp_path, attacks)
    out = tmp_path / "reports" / "eval.json"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--model",
            str(digits_cnn_dir),
            "--config",
            str(config),
            "--out",
            str(out),
            "--max-samples",
            "40",
        ],
    )
    assert result.exit_code == 0, result.output
    record = EvaluationRecord.load(out)
    assert not (digits_cnn_dir / "evaluation.json").exists()
    codes = {f.code.value for f in record.flags}
    assert codes == {"zero_gradients", "black_box_stronger"}
    for code in codes:
        assert code in result.stdout


@pytest.mark.parametrize(
    ("attack", "path"),
    [
        ({"name": "pgdx"}, "threat_model.image.attacks[1].name"),
        ({"name": "pgd", "params": {"eps": -0.3}}, "threat_model.image.attacks[1].params.eps"),
    ],
)
def test_a_bad_threat_model_exits_1_naming_the_field(
    digits_cnn_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    attack: dict[str, Any],
    path: str,
) -> None:
    config = _config(tmp_path, [ATTACKS[0], attack])
    argv = ["bastion", "evaluate", "--model", str(digits_cnn_dir), "--config", str(config)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ConfigError: {config}: {path}: ")
    assert not (digits_cnn_dir / "evaluation.json").exists()


def test_a_missing_model_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, ATTACKS)
    argv = ["bastion", "evaluate", "--model", str(tmp_path / "nope"), "--config", str(config)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    assert "ModelError" in capsys.readouterr().err
