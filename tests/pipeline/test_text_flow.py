"""The text flow end to end on a slice of the SMS data: it trains, attacks, hardens,
evaluates and writes loadable artifacts and a JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bastion.config import RegistryConfig, parse_config
from bastion.config.text import TextHardeningConfig
from bastion.defend.text import Sanitizer
from bastion.errors import ConfigError
from bastion.models.text import load_text_model, read_text_spec
from bastion.pipeline.text_flow import run_text_flow

REPO = Path(__file__).resolve().parents[2]


def _config(shared_data: Path, tmp_path: Path, **model: object) -> dict[str, object]:
    return {
        "name": "sms-tiny",
        "data": {"name": "sms_spam", "path": str(shared_data / "sms_spam"), "limit": 900},
        "model": {
            "architecture": "tfidf_logreg",
            "arguments": {"ngram_max": 4, "max_iter": 300},
            **model,
        },
        "threat_model": {
            "text": {
                "attacks": [
                    {"name": "text_char", "params": {"max_queries": 25}},
                    {"name": "text_invisible", "params": {"max_queries": 25}},
                ]
            }
        },
        "evaluation": {"latency_samples": 3},
        "output_dir": str(tmp_path),
    }


def test_flow_trains_hardens_and_reports(shared_data: Path, tmp_path: Path) -> None:
    config = parse_config(_config(shared_data, tmp_path))
    hardening = TextHardeningConfig(rounds=1, examples_per_round=40, strongest_attacks=1)
    result = run_text_flow(config, hardening=hardening, conditions=("baseline", "hardened"))
    summary = json.loads((tmp_path / "sms-tiny" / "text_flow.json").read_text())
    assert set(summary["conditions"]) == {"baseline", "hardened"}
    assert summary["summary"]["strongest_attack"] in {"text_char", "text_invisible"}
    assert summary["augmentation"]["hardened"]["rounds"][0]["attacked"] <= 40
    hardened = result.evaluations["hardened"].robustness
    # the sanitiser removes zero-width characters: that attack cannot succeed any more
    assert hardened.attack("text_invisible").successes == 0
    spec = read_text_spec(result.artifacts["hardened"])
    assert Sanitizer.from_dict(spec.extra["sanitizer"]) == Sanitizer()
    assert load_text_model(result.artifacts["baseline"]).classes == ("ham", "spam")


def test_example_file_is_valid(shared_data: Path) -> None:
    from bastion.config import load_config

    config = load_config(REPO / "examples" / "sms_spam.yaml")
    assert config.data.name == "sms_spam"
    assert len(config.threat_model.channel("text").attacks) >= 4
    assert config.text is not None
    assert config.text.rounds > 0
    assert config.gate.min_robust_accuracy is not None


def test_non_text_model_is_refused(shared_data: Path, tmp_path: Path) -> None:
    config = parse_config(_config(shared_data, tmp_path, architecture="small_cnn"))
    with pytest.raises(ConfigError, match=r"model\.architecture"):
        run_text_flow(config)


def test_bastion_run_gates_and_registers_the_hardened_filter(
    shared_data: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from bastion.cli import app
    from bastion.registry import Registry

    raw = _config(shared_data, tmp_path / "runs")
    raw["data"] = {"name": "sms_spam", "path": str(shared_data / "sms_spam"), "limit": 500}
    home = tmp_path / "home"
    raw |= {
        "registry": {"home": str(home)},
        "text": {"rounds": 1, "examples_per_round": 40, "strongest_attacks": 1},
        "gate": {"min_clean_accuracy": 0.5, "forbidden_flags": [], "promote_to": "staging"},
    }
    pipeline = tmp_path / "sms.yaml"
    pipeline.write_text(yaml.safe_dump(raw), encoding="utf-8")
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app, ["run", str(pipeline), "--no-progress", "--summary", str(summary)]
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(summary.read_text())
    assert outcome["stages"]["text_flow"] == "succeeded"
    with Registry.open(RegistryConfig(home=str(home))) as registry:
        baseline, candidate = registry.models.list("sms-tiny")
        assert outcome["candidate"] == candidate.ref
        assert candidate.parent == baseline.ref
        assert candidate.dataset_fingerprint == baseline.dataset_fingerprint is not None
        assert candidate.attack_library_version is not None
        assert read_text_spec(candidate.artifact_path).extra["condition"] == "hardened"
        assert candidate.config["text"]["rounds"] == 1
        assert "seconds" not in json.dumps(read_text_spec(candidate.artifact_path).extra)
        for version in (baseline, candidate):
            stored = registry.evaluations.latest(version.ref).record
            assert stored["channel"] == "text"
            assert 0.5 < stored["clean_accuracy"] <= 1
        gate = registry.gates.latest(candidate.ref)
        assert gate.verdict.value == outcome["verdict"] == "pass"
        assert candidate.stage.value == outcome["stage"] == "staging"
    assert Path(outcome["report"]).is_file()
