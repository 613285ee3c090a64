"""Checks every registered image attack must pass (the scikit-learn ``test_common`` habit).

A new attack gets all of these for free by registering; ``FAST`` only shrinks budgets so
the suite stays quick, and an attack missing from it runs with its defaults.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from bastion import attacks
from bastion.attacks import ImageAttack, Norm
from bastion.attacks.params import Boolean, Constraint, Interval, OneOf, Optional
from bastion.errors import AttackError, ParameterError

IMAGE_ATTACKS = attacks.names("image")

#: smaller budgets that keep every check fast; everything else stays at its default
FAST: dict[str, dict[str, Any]] = {
    "pgd": {"steps": 3},
    "apgd_ce": {"steps": 5},
    "apgd_dlr": {"steps": 5},
    "apgd_t": {"steps": 5, "n_target_classes": 2},
    "square": {"n_queries": 25},
    "gaussian_noise": {"trials": 3},
    "occlusion": {"trials": 3, "size": 3},
}
#: attacks that draw no random numbers with their default parameters
DETERMINISTIC = {"fgsm"}


def build(name: str, **overrides: Any) -> ImageAttack:
    params = dict(FAST.get(name, {}))
    if "eps" in attacks.get(name).params:
        params["eps"] = 0.1
    params.update(overrides)
    attack = attacks.create(name, **params)
    assert isinstance(attack, ImageAttack)
    return attack


def tiny_model() -> nn.Module:
    """Batch norm and dropout make train and eval mode differ, so mode handling shows."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(4 * 8 * 8, 10),
    ).eval()


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return tiny_model()


@pytest.fixture(scope="module")
def batch(model: nn.Module) -> tuple[Tensor, Tensor]:
    """Inputs the model classifies as ``y``, so every attack has work to do."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand((6, 1, 8, 8), generator=gen)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return x, y


def distance_ok(attack: ImageAttack, x: Tensor, x_adv: Tensor) -> bool:
    """The budget, measured here independently of ``ImageAttack.verify``."""
    budget = attack.budget_for(x)
    delta = (x_adv - x).flatten(1)
    if budget is None:
        return attack.norm is Norm.NONE
    if attack.norm is Norm.LINF:
        return float(delta.abs().max()) <= budget + 1e-6
    if attack.norm is Norm.L2:
        return float(delta.norm(dim=1).max()) <= budget * (1 + 1e-4)
    if attack.norm is Norm.L0:
        return int((delta != 0).sum(dim=1).max()) <= budget
    raise AssertionError(f"no check for norm {attack.norm}")


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_result_keeps_shape_dtype_range_and_budget(
    name: str, model: nn.Module, batch: tuple[Tensor, Tensor]
) -> None:
    x, y = batch
    attack = build(name)
    x_adv = attack(model, x, y)
    assert x_adv.shape == x.shape
    assert x_adv.dtype == x.dtype
    assert not x_adv.requires_grad
    assert float(x_adv.min()) >= 0.0
    assert float(x_adv.max()) <= 1.0
    assert distance_ok(attack, x, x_adv)
    assert not torch.equal(x_adv, x), f"{name} returned its input unchanged"


@pytest.mark.parametrize("name", [n for n in IMAGE_ATTACKS if "norm" in attacks.get(n).params])
def test_l2_variant_stays_in_its_ball(
    name: str, model: nn.Module, batch: tuple[Tensor, Tensor]
) -> None:
    x, y = batch
    attack = build(name, norm="l2", eps=0.5)
    x_adv = attack(model, x, y)
    assert attack.norm is Norm.L2
    assert distance_ok(attack, x, x_adv)
    assert float((x_adv - x).flatten(1).norm(dim=1).max()) > 0.1


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_input_is_not_modified(name: str, model: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    x, y = batch
    x_before, y_before = x.clone(), y.clone()
    build(name)(model, x, y)
    assert torch.equal(x, x_before)
    assert torch.equal(y, y_before)


@pytest.mark.parametrize("training", [True, False, "mixed"])
@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_model_mode_is_restored(
    name: str, training: bool | str, batch: tuple[Tensor, Tensor]
) -> None:
    net = tiny_model().train(training is not False)
    if training == "mixed":
        net[1].eval()  # a frozen batch norm inside a model that trains
    before = [m.training for m in net.modules()]
    build(name)(net, *batch)
    assert [m.training for m in net.modules()] == before


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_parameters_buffers_and_grads_are_untouched(
    name: str, batch: tuple[Tensor, Tensor]
) -> None:
    net = tiny_model().train()  # in train mode batch norm would update its running stats
    for p in net.parameters():
        p.grad = torch.full_like(p, 0.5)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    grads = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    build(name)(net, *batch)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(
        p.grad is not None and torch.equal(p.grad, g)
        for p, g in zip(net.parameters(), grads, strict=True)
    )


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_reproducible_under_a_seed_without_touching_global_rng(
    name: str, model: nn.Module, batch: tuple[Tensor, Tensor]
) -> None:
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    first = build(name, seed=7)(model, *batch)
    assert torch.equal(torch.get_rng_state(), rng)
    second = build(name, seed=7)(model, *batch)
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", sorted(set(IMAGE_ATTACKS) - DETERMINISTIC))
def test_different_seeds_give_different_results(
    name: str, model: nn.Module, batch: tuple[Tensor, Tensor]
) -> None:
    a = build(name, seed=1)(model, *batch)
    b = build(name, seed=2)(model, *batch)
    assert not torch.equal(a, b)


def test_fgsm_random_start_depends_on_the_seed(
    model: nn.Module, batch: tuple[Tensor, Tensor]
) -> None:
    a = build("fgsm", random_start=True, seed=1)(model, *batch)
    b = build("fgsm", random_start=True, seed=2)(model, *batch)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_empty_batch(name: str, model: nn.Module) -> None:
    x = torch.zeros((0, 1, 8, 8))
    out = build(name)(model, x, torch.zeros(0, dtype=torch.int64))
    assert out.shape == x.shape
    assert out.dtype == x.dtype


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_runs_under_no_grad_and_inference_mode(
    name: str, model: nn.Module, batch: tuple[Tensor, Tensor]
) -> None:
    expected = build(name)(model, *batch)
    with torch.no_grad():
        assert torch.equal(build(name)(model, *batch), expected)
    with torch.inference_mode():
        assert torch.equal(build(name)(model, *batch), expected)


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_plain_callable_model(name: str, model: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    def forward(x: Tensor) -> Tensor:
        out: Tensor = model(x)
        return out

    assert torch.equal(build(name)(forward, *batch), build(name)(model, *batch))


def bad_inputs(x: Tensor, y: Tensor) -> Iterator[tuple[str, Any, Any]]:
    yield "above one", x + 1.0, y
    yield "below zero", x - 1.0, y
    yield "nan", torch.where(x > 0.5, float("nan"), x), y
    yield "integer x", (x * 255).to(torch.uint8), y
    yield "not a tensor", x.numpy(), y
    yield "no batch axis", x[0, 0, 0], y
    yield "y too short", x, y[:-1]
    yield "y two-dimensional", x, y[:, None]
    yield "float y", x, y.float()
    yield "negative label", x, torch.full_like(y, -1)
    yield "label out of range", x, torch.full_like(y, 10)


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_bad_inputs_raise_attack_error(
    name: str, model: nn.Module, batch: tuple[Tensor, Tensor]
) -> None:
    attack = build(name)
    for what, x, y in bad_inputs(*batch):
        with pytest.raises(AttackError) as info:
            attack(model, x, y)
        assert name in str(info.value), what


def test_model_with_wrong_output_shape_raises(batch: tuple[Tensor, Tensor]) -> None:
    def flat(x: Tensor) -> Tensor:
        return x.flatten(1).sum(dim=1)

    for name in IMAGE_ATTACKS:
        with pytest.raises(AttackError, match="logits"):
            build(name)(flat, *batch)


# --- parameters ---------------------------------------------------------------------------


def rejected_examples(constraint: Constraint) -> list[Any]:
    """Values ``constraint`` must refuse, derived from its declaration."""
    if isinstance(constraint, Optional):
        return [v for v in rejected_examples(constraint.inner) if v is not None]
    if isinstance(constraint, Boolean):
        return [1, 0, "true", None]
    if isinstance(constraint, OneOf):
        return ["no-such-option", None, 3.5]
    if isinstance(constraint, Interval):
        bad: list[Any] = ["0.1", None, True, float("nan"), float("inf"), [1]]
        if constraint.kind is int:
            bad.append(2.5)
        if constraint.low is not None:
            bad.append(constraint.kind(constraint.low) - 1)
            if constraint.closed in ("right", "neither"):
                bad.append(constraint.kind(constraint.low))
        if constraint.high is not None:
            bad.append(constraint.kind(constraint.high) + 1)
            if constraint.closed in ("left", "neither"):
                bad.append(constraint.kind(constraint.high))
        return bad
    raise AssertionError(f"no examples for {constraint!r}; teach this test the new constraint")


PARAMS = [(name, key) for name in IMAGE_ATTACKS for key in attacks.get(name).params]


@pytest.mark.parametrize(("name", "key"), PARAMS)
def test_each_bad_parameter_value_gets_a_clear_error(name: str, key: str) -> None:
    constraint = attacks.get(name).params[key].constraint
    examples = rejected_examples(constraint)
    assert examples
    for value in examples:
        with pytest.raises(ParameterError) as info:
            attacks.create(name, **{key: value})
        error = info.value
        assert error.param == key
        assert error.owner == name
        message = str(error)
        assert f"'{key}'" in message
        assert name in message
        assert constraint.describe() in message
        assert repr(value) in message


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_defaults_are_valid_and_described(name: str) -> None:
    attack = attacks.create(name)
    described = attack.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["name"] == name
    assert described["version"] == attacks.get(name).version
    assert set(described["params"]) == set(attacks.get(name).params)
    assert math.isfinite(attack.cost())
    assert attack.cost() > 0


@pytest.mark.parametrize("name", IMAGE_ATTACKS)
def test_unknown_parameter_names_the_known_ones(name: str) -> None:
    with pytest.raises(ParameterError) as info:
        attacks.create(name, sede=3)
    message = str(info.value)
    assert f"{name} has no parameter 'sede'" in message
    assert "did you mean 'seed'" in message
    for key in attacks.get(name).params:
        assert key in message


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.sampled_from(["linf", "l2", "ce", "margin", "constant", "noise"]),
)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_constructor_agrees_with_the_parameter_table(data: st.DataObject) -> None:
    """Refused values always raise a ParameterError naming the parameter; accepted ones
    only fail through a declared cross-parameter check."""
    name, key = data.draw(st.sampled_from(PARAMS))
    value = data.draw(anything)
    constraint = attacks.get(name).params[key].constraint
    if not constraint.accepts(value):
        with pytest.raises(ParameterError) as info:
            attacks.create(name, **{key: value})
        assert info.value.param == key
        return
    cross: ParameterError | None = None
    try:
        attacks.create(name, **{key: value})
    except ParameterError as error:
        cross = error
    assert cross is None or cross.param != key or "for norm" in cross.expected
