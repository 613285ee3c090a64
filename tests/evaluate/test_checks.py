"""Each sanity flag fires on a model with exactly the defect it names, and not on digits_cnn."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from bastion import attacks
from bastion.config import EvaluationConfig, ThreatModel
from bastion.data import Dataset
from bastion.errors import EvaluationError
from bastion.evaluate import EvaluationRecord, EvaluationWarning, FlagCode, evaluate
from bastion.evaluate.checks import (
    check_gradients,
    check_probability_outputs,
    check_randomized,
    comparable_white_box,
)

Threat = Callable[..., ThreatModel]
SMALL = EvaluationConfig(max_samples=64, latency_samples=5)


def _run(
    model: nn.Module, digits: Dataset, threat: ThreatModel, **config: object
) -> EvaluationRecord:
    settings = SMALL.model_copy(update=config)
    return evaluate(model, digits, threat, settings)


def _run_flagged(
    model: nn.Module, digits: Dataset, threat: ThreatModel, code: FlagCode, **config: object
) -> EvaluationRecord:
    """Evaluate, requiring a warning for ``code``; return the record."""
    with pytest.warns(EvaluationWarning) as caught:
        record = _run(model, digits, threat, **config)
    warned = {w.message.flag.code for w in caught if isinstance(w.message, EvaluationWarning)}
    assert code in warned
    assert warned == set(record.flag_codes)
    return record


def test_a_logits_model_raises_no_flag(
    digits_cnn: nn.Module, digits: Dataset, threat: Threat
) -> None:
    # warnings are errors in this suite: any flag would fail the call itself
    record = _run(digits_cnn, digits, threat(("fgsm", {"eps": 0.1}), ("pgd", {"eps": 0.3})))
    assert record.flags == ()
    assert not record.unreliable


def test_softmax_outputs_are_flagged(
    softmax_model: nn.Module, digits: Dataset, threat: Threat
) -> None:
    record = _run_flagged(
        softmax_model, digits, threat(("fgsm", {"eps": 0.1})), FlagCode.SOFTMAX_OUTPUTS
    )
    flag = next(f for f in record.flags if f.code is FlagCode.SOFTMAX_OUTPUTS)
    assert flag.details["rows"] == 64
    assert "logits" in flag.message


def test_check_probability_outputs_needs_every_row_to_be_a_distribution() -> None:
    probs = torch.softmax(torch.randn(20, 5), dim=1)
    assert check_probability_outputs(probs) is not None
    assert check_probability_outputs(torch.log(probs)) is None  # log-softmax is fine
    almost = probs.clone()
    almost[3] *= 1.1  # one row sums to 1.1
    assert check_probability_outputs(almost) is None


def test_a_step_function_is_flagged_for_zero_gradients(
    step_model: nn.Module, digits: Dataset, threat: Threat
) -> None:
    record = _run_flagged(
        step_model, digits, threat(("fgsm", {"eps": 0.1})), FlagCode.ZERO_GRADIENTS
    )
    flag = next(f for f in record.flags if f.code is FlagCode.ZERO_GRADIENTS)
    assert flag.details["fraction"] == 1.0


def test_zero_gradient_check_directly(
    digits_cnn: nn.Module, step_model: nn.Module, digits: Dataset
) -> None:
    x, y = digits.test.tensors()
    flags, outputs = check_gradients(step_model, x[:32], y[:32])
    assert [f.code for f in flags] == [FlagCode.ZERO_GRADIENTS]
    assert outputs.shape == (32, 10)
    flags, _ = check_gradients(digits_cnn, x[:32], y[:32])
    assert flags == []


def test_a_detached_model_is_flagged_for_zero_gradients(digits: Dataset) -> None:
    x, y = digits.test.tensors()
    detached = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def model(inputs: torch.Tensor) -> torch.Tensor:
        return detached(inputs).detach()

    flags, _ = check_gradients(model, x[:8], y[:8])
    assert [f.code for f in flags] == [FlagCode.ZERO_GRADIENTS]


def test_nonfinite_gradients_are_flagged(nan_grad_model: nn.Module, digits: Dataset) -> None:
    x, y = digits.test.tensors()
    flags, _ = check_gradients(nan_grad_model, x[:16], y[:16])
    assert FlagCode.NONFINITE_GRADIENTS in [f.code for f in flags]
    assert FlagCode.ZERO_GRADIENTS not in [f.code for f in flags]


def test_a_failing_backward_is_flagged_and_square_still_runs(
    raising_grad_model: nn.Module, digits: Dataset, threat: Threat
) -> None:
    record = _run_flagged(
        raising_grad_model,
        digits,
        threat(("square", {"eps": 0.3, "n_queries": 50})),
        FlagCode.GRADIENTS_UNAVAILABLE,
        max_samples=32,
    )
    assert record.attacks[0].success_count > 0


def test_a_failing_backward_stops_a_gradient_attack_with_a_clear_error(
    raising_grad_model: nn.Module, digits: Dataset, threat: Threat
) -> None:
    with pytest.raises(EvaluationError, match=r"attack 'fgsm' failed on the model.*differentiated"):
        _run(raising_grad_model, digits, threat(("fgsm", {"eps": 0.1})))


def test_randomized_outputs_are_flagged(
    noisy_model: nn.Module, digits: Dataset, threat: Threat
) -> None:
    record = _run_flagged(
        noisy_model, digits, threat(("fgsm", {"eps": 0.1})), FlagCode.RANDOMIZED_OUTPUTS
    )
    flag = next(f for f in record.flags if f.code is FlagCode.RANDOMIZED_OUTPUTS)
    assert flag.details["max_abs_difference"] > 0


def test_check_randomized_accepts_a_deterministic_model(
    digits_cnn: nn.Module, noisy_model: nn.Module, digits: Dataset
) -> None:
    x, _ = digits.test.tensors()
    with torch.no_grad():
        reference = digits_cnn(x[:16])
        noisy_reference = noisy_model(x[:16])
    assert check_randomized(digits_cnn, x[:16], reference) is None
    assert check_randomized(noisy_model, x[:16], noisy_reference) is not None


def test_dropout_in_train_mode_is_not_randomness_at_test_time(
    digits_cnn: nn.Module, digits: Dataset, threat: Threat
) -> None:
    # evaluation runs in eval mode, where dropout is off; the caller's mode comes back
    model = nn.Sequential(nn.Dropout(0.5), copy.deepcopy(digits_cnn)).train()
    record = _run(model, digits, threat(("fgsm", {"eps": 0.1})))
    assert FlagCode.RANDOMIZED_OUTPUTS not in record.flag_codes
    assert model.training


@pytest.mark.parametrize("standalone", [True, False])
def test_square_beating_masked_gradients_is_flagged(
    masked_model: nn.Module, digits: Dataset, threat: Threat, standalone: bool
) -> None:
    # pgd costs 30 passes, square ~20: square runs first, so in lazy mode pgd must be
    # re-run on the points square broke before the flag can be decided
    suite = threat(
        ("pgd", {"eps": 0.3, "steps": 30, "random_start": False}),
        ("square", {"eps": 0.3, "n_queries": 60}),
    )
    assert attacks.create("square", n_queries=60).cost() < 30
    record = _run_flagged(
        masked_model, digits, suite, FlagCode.BLACK_BOX_STRONGER, standalone=standalone
    )
    flag = next(f for f in record.flags if f.code is FlagCode.BLACK_BOX_STRONGER)
    assert flag.details["attack"] == "square"
    assert flag.details["gradient_attacks"] == ["pgd"]
    assert FlagCode.ZERO_GRADIENTS in record.flag_codes
    square, pgd = record.attack("square"), record.attack("pgd")
    assert pgd.success_count == 0  # zero gradients, no random start: pgd cannot move
    assert flag.details["count"] == square.success_count
    assert set(flag.details["sample_ids"]) <= set(square.broken_ids)


@pytest.mark.parametrize("standalone", [True, False])
def test_square_on_a_working_model_raises_no_flag(
    digits_cnn: nn.Module, digits: Dataset, threat: Threat, standalone: bool
) -> None:
    # square is the cheaper one, so in lazy mode apgd_ce never sees the points square
    # broke; the check must attack them with apgd_ce before blaming gradient masking
    suite = threat(
        ("apgd_ce", {"eps": 0.3, "steps": 20}),
        ("square", {"eps": 0.3, "n_queries": 60}),
    )
    record = _run(digits_cnn, digits, suite, standalone=standalone)
    assert [a.label for a in record.attacks] == ["square", "apgd_ce"]
    assert record.attack("square").success_count > 0  # square did break points ...
    assert record.flags == ()  # ... but none that the gradient attack missed


def test_black_box_is_compared_only_with_comparable_white_box_attacks() -> None:
    square = attacks.create("square", eps=0.1)
    assert comparable_white_box(square, attacks.create("pgd", eps=0.1))
    assert comparable_white_box(square, attacks.create("pgd", eps=0.2))
    assert not comparable_white_box(square, attacks.create("pgd", eps=0.05))
    assert not comparable_white_box(square, attacks.create("pgd", eps=1.0, norm="l2"))
    assert not comparable_white_box(attacks.create("pgd", eps=0.1), square)
    assert not comparable_white_box(attacks.create("gaussian_noise"), attacks.create("pgd"))
