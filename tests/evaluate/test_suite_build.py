"""Building a threat model's suite: file order, labels, seeds, and errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.attacks import Attack, Modality, registry
from bastion.config import ThreatModel, load_config
from bastion.errors import ConfigError
from bastion.evaluate import build_entries, build_suite, order_by_cost

REPO = Path(__file__).resolve().parents[2]


def _threat(*specs: dict[str, Any]) -> ThreatModel:
    return ThreatModel.model_validate({"image": {"attacks": list(specs)}})


def test_suite_keeps_file_order_and_parameters() -> None:
    threat = _threat(
        {"name": "pgd", "params": {"eps": 0.2, "steps": 7}},
        {"name": "fgsm", "params": {"eps": 0.1}},
    )
    suite = build_suite(threat, "image")
    assert [a.name for a in suite] == ["pgd", "fgsm"]
    assert suite[0].get_params()["eps"] == 0.2
    assert suite[0].get_params()["steps"] == 7
    assert suite[1].budget == 0.1


def test_order_by_cost_is_cheapest_first_and_stable() -> None:
    threat = _threat(
        {"name": "pgd", "params": {"eps": 0.1, "steps": 20}},
        {"name": "fgsm", "params": {"eps": 0.1}, "label": "fgsm-a"},
        {"name": "pgd", "params": {"eps": 0.1, "steps": 5}},
        {"name": "fgsm", "params": {"eps": 0.2}, "label": "fgsm-b"},
    )
    ordered = order_by_cost(build_entries(threat, "image"))
    assert [e.label for e in ordered] == ["fgsm-a", "fgsm-b", "pgd[2]", "pgd[0]"]
    costs = [e.attack.cost() for e in ordered]
    assert costs == sorted(costs)


def test_default_labels_are_unique() -> None:
    threat = _threat(
        {"name": "fgsm", "params": {"eps": 0.1}},
        {"name": "pgd", "params": {"eps": 0.1}},
        {"name": "fgsm", "params": {"eps": 0.2}},
    )
    assert [e.label for e in build_entries(threat)] == ["fgsm[0]", "pgd", "fgsm[2]"]


def test_duplicate_explicit_labels_name_the_field() -> None:
    threat = _threat(
        {"name": "fgsm", "label": "weak"},
        {"name": "pgd", "label": "weak"},
    )
    with pytest.raises(ConfigError) as info:
        build_suite(threat, source="t.yaml")
    assert info.value.path == "threat_model.image.attacks[1].label"
    assert "t.yaml" in str(info.value)


def test_seed_is_the_default_of_attacks_that_set_none() -> None:
    threat = _threat({"name": "pgd"}, {"name": "pgd", "params": {"seed": 5}})
    first, second = build_suite(threat, seed=11)
    assert first.get_params()["seed"] == 11
    assert second.get_params()["seed"] == 5


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ({"name": "pgdd"}, "threat_model.image.attacks[1].name", "unknown attack 'pgdd'"),
        (
            {"name": "pgd", "params": {"eps": -0.1}},
            "threat_model.image.attacks[1].params.eps",
            "Got -0.1",
        ),
        (
            {"name": "pgd", "params": {"eps": 2.0}},
            "threat_model.image.attacks[1].params.eps",
            "Got 2.0",
        ),
        (
            {"name": "pgd", "params": {"steps": "ten"}},
            "threat_model.image.attacks[1].params.steps",
            "'ten'",
        ),
        (
            {"name": "fgsm", "params": {"epsilon": 0.1}},
            "threat_model.image.attacks[1].params.epsilon",
            "unknown parameter 'epsilon'",
        ),
    ],
)
def test_bad_attack_specs_name_file_and_field(
    spec: dict[str, Any], path: str, fragment: str
) -> None:
    threat = _threat({"name": "fgsm"}, spec)
    with pytest.raises(ConfigError) as info:
        build_suite(threat, "image", source="threat.yaml")
    assert info.value.path == path
    assert info.value.source == "threat.yaml"
    message = str(info.value)
    assert message.startswith(f"threat.yaml: {path}: ")
    assert fragment in message


class _FakeText(Attack):
    """A text attack, registered only for the duration of one test."""

    name = "fake_text_attack"
    version = "1.0.0"
    modality = Modality.TEXT


def test_an_attack_of_another_modality_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._REGISTRY, _FakeText.name, _FakeText)
    with pytest.raises(ConfigError, match="is a text attack") as info:
        build_suite(_threat({"name": "fgsm"}, {"name": _FakeText.name}), "image")
    assert info.value.path == "threat_model.image.attacks[1].name"


def test_missing_channel_is_an_empty_suite() -> None:
    assert build_suite(ThreatModel(), "image") == []


def test_the_shipped_example_config_builds() -> None:
    config = load_config(REPO / "examples" / "digits_eval.yaml")
    suite = build_suite(config.threat_model, "image", source=config.source)
    names = {a.name for a in suite}
    assert {"fgsm", "pgd", "square"} <= names
    assert any(not a.uses_gradients for a in suite)
