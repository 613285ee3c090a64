"""Schedules give the expected values at given epochs; the recipe and plan reject what does
not make sense with an error that names the field."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from bastion.config import RecipeConfig, ThreatModel, TrainConfig, parse_config
from bastion.config.recipe import ExposureConfig, LRScheduleConfig
from bastion.errors import ConfigError
from bastion.train import Ramp, lr_factor, ramp_value, resolve_plan, training_eps
from bastion.train.schedules import lr_lambda


def test_constant_schedule_is_one_everywhere() -> None:
    schedule = LRScheduleConfig()
    assert [lr_factor(schedule, t, 10) for t in (0, 3.3, 10)] == [1.0, 1.0, 1.0]


def test_piecewise_multiplies_by_gamma_at_each_milestone() -> None:
    schedule = LRScheduleConfig(kind="piecewise", milestones=[5, 8], gamma=0.1)
    assert lr_factor(schedule, 4.99, 10) == 1.0
    assert lr_factor(schedule, 5.0, 10) == pytest.approx(0.1)
    assert lr_factor(schedule, 7.5, 10) == pytest.approx(0.1)
    assert lr_factor(schedule, 8.0, 10) == pytest.approx(0.01)


def test_cosine_from_one_to_final_fraction() -> None:
    schedule = LRScheduleConfig(kind="cosine", final_fraction=0.1)
    assert lr_factor(schedule, 0, 10) == pytest.approx(1.0)
    assert lr_factor(schedule, 5, 10) == pytest.approx(0.55)
    assert lr_factor(schedule, 10, 10) == pytest.approx(0.1)
    quarter = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))
    assert lr_factor(schedule, 2.5, 10) == pytest.approx(quarter)


def test_one_cycle_warms_up_then_anneals_linearly() -> None:
    schedule = LRScheduleConfig(kind="one_cycle", warmup_epochs=2, warmup_start=0.1)
    assert lr_factor(schedule, 0, 10) == pytest.approx(0.1)
    assert lr_factor(schedule, 1, 10) == pytest.approx(0.55)
    assert lr_factor(schedule, 2, 10) == pytest.approx(1.0)
    assert lr_factor(schedule, 6, 10) == pytest.approx(0.5)
    assert lr_factor(schedule, 10, 10) == pytest.approx(0.0)


def test_one_cycle_default_warmup_is_forty_percent() -> None:
    schedule = LRScheduleConfig(kind="one_cycle")
    assert lr_factor(schedule, 2, 10) == pytest.approx(0.5)
    assert lr_factor(schedule, 4, 10) == pytest.approx(1.0)
    assert lr_factor(schedule, 7, 10) == pytest.approx(0.5)


def test_warmup_applies_to_cosine_too() -> None:
    schedule = LRScheduleConfig(kind="cosine", warmup_epochs=1)
    assert lr_factor(schedule, 0.5, 5) == pytest.approx(0.5)
    assert lr_factor(schedule, 1, 5) == pytest.approx(1.0)
    assert lr_factor(schedule, 3, 5) == pytest.approx(0.5)


def test_lr_lambda_counts_optimizer_steps_as_fractional_epochs() -> None:
    schedule = LRScheduleConfig(kind="one_cycle", warmup_epochs=1)
    factor = lr_lambda(schedule, epochs=4, steps_per_epoch=10)
    assert factor(5) == pytest.approx(0.5)
    assert factor(10) == pytest.approx(1.0)
    assert factor(40) == pytest.approx(0.0)


def test_ramp_of_eps_and_adversarial_share() -> None:
    ramp = Ramp(ExposureConfig(epochs=4, eps_start=0.1, adv_fraction_start=0.5), eps=0.3)
    assert ramp.eps(0) == pytest.approx(0.1)
    assert ramp.eps(2) == pytest.approx(0.2)
    assert ramp.eps(4) == pytest.approx(0.3)
    assert ramp.eps(9) == pytest.approx(0.3)
    assert ramp.adv_fraction(0) == pytest.approx(0.5)
    assert ramp.adv_fraction(1) == pytest.approx(0.625)
    assert ramp.adv_fraction(4) == pytest.approx(1.0)
    assert ramp_value(0.0, 1.0, 0, 0.0) == 1.0  # no ramp: full strength at once


@pytest.mark.parametrize(
    ("recipe", "fragment"),
    [
        ({"lr_schedule": {"kind": "cosine", "milestones": [2]}}, "milestones only apply"),
        ({"lr_schedule": {"kind": "piecewise", "milestones": [4, 2]}}, "increase strictly"),
        ({"method": "pgd_at", "beta": 3.0}, "beta applies to methods trades and mart"),
        ({"method": "mart", "awp": {}}, "awp applies to methods pgd_at and trades"),
        ({"method": "fgsm_rs", "attack": {"steps": 3}}, "fgsm_rs takes one step"),
        (
            {"method": "fgsm_rs", "perturbations": {"attacks": [{"name": "pgd"}]}},
            "perturbations apply",
        ),
        ({"exposure": {"adv_fraction_start": 0.9, "adv_fraction": 0.5}}, "must not exceed"),
        ({"method": "tradez"}, "method"),
        ({"epochs": 0}, "epochs"),
        ({"lr_schedule": {"kind": "cosine", "final_fraction": 1.5}}, "final_fraction"),
    ],
)
def test_recipe_rejects_inconsistent_fields(recipe: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as caught:
        parse_config({"data": {"name": "digits"}, "recipe": recipe}, source="run.yaml")
    assert "run.yaml" in str(caught.value)
    assert "recipe" in str(caught.value)


def test_unknown_recipe_key_is_an_error() -> None:
    with pytest.raises(ValidationError):
        RecipeConfig.model_validate({"methd": "trades"})


def _threat(*attacks: dict[str, object]) -> ThreatModel:
    return ThreatModel.model_validate({"image": {"attacks": list(attacks)}})


def test_training_eps_is_the_largest_linf_budget_of_the_threat_model() -> None:
    threat = _threat(
        {"name": "fgsm", "params": {"eps": 0.1}},
        {"name": "pgd", "params": {"eps": 0.25, "steps": 5}},
        {"name": "pgd", "params": {"eps": 2.0, "norm": "l2"}},
    )
    assert training_eps(threat) == pytest.approx(0.25)
    plan = resolve_plan(TrainConfig(), RecipeConfig(), threat)
    assert plan.eps == pytest.approx(0.25)
    assert resolve_plan(TrainConfig(), RecipeConfig(eps=0.1), threat).eps == pytest.approx(0.1)


def test_no_budget_anywhere_names_recipe_eps() -> None:
    threat = _threat({"name": "pgd", "params": {"eps": 2.0, "norm": "l2"}})
    with pytest.raises(ConfigError, match=r"recipe\.eps"):
        resolve_plan(TrainConfig(), RecipeConfig(), threat)


def test_bad_threat_attack_names_its_position() -> None:
    threat = _threat(
        {"name": "fgsm", "params": {"eps": 0.1}}, {"name": "pgd", "params": {"epz": 1}}
    )
    with pytest.raises(ConfigError, match=r"threat_model\.image\.attacks\[1\]"):
        training_eps(threat)


def test_recipe_inherits_train_section_values() -> None:
    train = TrainConfig(epochs=7, batch_size=32, lr=0.01, optimizer="sgd", seed=3)
    plan = resolve_plan(train, RecipeConfig(eps=0.2, lr=0.05), None)
    assert (plan.epochs, plan.batch_size, plan.optimizer, plan.seed) == (7, 32, "sgd", 3)
    assert plan.lr == pytest.approx(0.05)
    assert plan.beta == pytest.approx(6.0)


def test_plan_checks_epoch_dependent_fields() -> None:
    recipe = RecipeConfig(eps=0.2, epochs=4, lr_schedule={"kind": "piecewise", "milestones": [5]})
    with pytest.raises(ConfigError, match=r"milestones"):
        resolve_plan(TrainConfig(), recipe, None)
    with pytest.raises(ConfigError, match=r"warmup_epochs"):
        resolve_plan(TrainConfig(), RecipeConfig(eps=0.2, epochs=2, awp={"warmup_epochs": 2}), None)


def test_mix_inherits_linf_eps_and_requires_l2_eps() -> None:
    mix = {"attacks": [{"name": "pgd", "params": {"steps": 3}}, {"name": "fgsm", "weight": 2}]}
    plan = resolve_plan(TrainConfig(), RecipeConfig(eps=0.2, perturbations=mix), None)
    assert [m.params["eps"] for m in plan.mix] == [0.2, 0.2]
    assert [m.weight for m in plan.mix] == [1.0, 2.0]
    l2 = {"attacks": [{"name": "pgd", "params": {"norm": "l2"}}]}
    with pytest.raises(ConfigError, match=r"perturbations\.attacks\[0\]"):
        resolve_plan(TrainConfig(), RecipeConfig(eps=0.2, perturbations=l2), None)
    unknown = {"attacks": [{"name": "no_such_attack"}]}
    with pytest.raises(ConfigError, match="unknown attack"):
        resolve_plan(TrainConfig(), RecipeConfig(eps=0.2, perturbations=unknown), None)


def test_fingerprint_tracks_what_changes_the_weights() -> None:
    base = resolve_plan(TrainConfig(), RecipeConfig(eps=0.2), None)
    same = resolve_plan(TrainConfig(), RecipeConfig(eps=0.2, tracking={"mlflow": False}), None)
    other = resolve_plan(TrainConfig(), RecipeConfig(eps=0.2, beta=None, seed=5), None)
    assert base.fingerprint() == same.fingerprint()
    assert base.fingerprint() != other.fingerprint()
