"""The evaluation engine on the trained digits_cnn: worst-case semantics, lazy vs standalone,
the record's contents, determinism and clear errors."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from bastion import attacks
from bastion.config import EvaluationConfig, ThreatModel
from bastion.data import Dataset, Split
from bastion.errors import ConfigError, EvaluationError
from bastion.evaluate import EvaluationRecord, EvaluationWarning, FlagCode, evaluate

Threat = Callable[..., ThreatModel]
SMALL = EvaluationConfig(max_samples=64, latency_samples=5, batch_size=32)
#: attacks whose result for a sample does not depend on the rest of its batch
DETERMINISTIC = (
    ("fgsm", {"eps": 0.1}),
    ("pgd", {"eps": 0.1, "steps": 5, "random_start": False}),
    ("pgd", {"eps": 0.2, "steps": 3, "random_start": False, "loss": "margin"}),
)


def _timeless(record: EvaluationRecord) -> dict[str, Any]:
    data = record.to_dict()
    for key in ("started_at", "finished_at", "seconds", "checks_seconds", "latency"):
        data.pop(key)
    for attack in data["attacks"]:
        attack.pop("seconds")
    return data


def assert_worst_case_consistent(record: EvaluationRecord) -> None:
    """The invariants every record must satisfy, whatever the suite."""
    n = record.n_samples
    mask = np.array(record.robust_mask)
    assert mask.shape == (n,)
    assert record.worst_case_accuracy == pytest.approx(mask.mean())
    assert record.worst_case_accuracy <= record.clean_accuracy
    broken: set[int] = set()
    previous = record.clean_accuracy
    for attack in record.attacks:
        if attack.robust_accuracy is not None:
            assert record.worst_case_accuracy <= attack.robust_accuracy + 1e-12
            assert attack.robust_accuracy <= record.clean_accuracy
        assert attack.cumulative_accuracy <= previous + 1e-12
        previous = attack.cumulative_accuracy
        assert len(attack.broken_ids) == attack.success_count <= attack.attacked
        broken |= set(attack.broken_ids)
    if record.attacks:
        assert record.attacks[-1].cumulative_accuracy == pytest.approx(record.worst_case_accuracy)
    ids = np.array(record.sample_ids)
    robust_ids = set(ids[mask].tolist())
    assert not robust_ids & broken
    clean_correct = round(record.clean_accuracy * n)
    assert len(robust_ids) + len(broken) == clean_correct


def test_worst_case_is_below_every_attack(
    digits_cnn: nn.Module, digits: Dataset, threat: Threat
) -> None:
    suite = threat(
        ("pgd", {"eps": 0.1, "steps": 10}),
        ("fgsm", {"eps": 0.1}),
        ("gaussian_noise", {"sigma": 0.3}),
        ("fgsm", {"eps": 0.05}),
    )
    record = evaluate(digits_cnn, digits, suite, SMALL)
    assert_worst_case_consistent(record)
    assert record.clean_accuracy > 0.9
    accuracies = [a.robust_accuracy for a in record.attacks]
    assert all(a is not None for a in accuracies)
    assert record.worst_case_accuracy <= min(a for a in accuracies if a is not None)
    # cheapest first
    costs = [a.cost for a in record.attacks]
    assert costs == sorted(costs)


_SPECS = st.sampled_from(
    [
        ("fgsm", {"eps": 0.05}),
        ("fgsm", {"eps": 0.15}),
        ("pgd", {"eps": 0.1, "steps": 3}),
        ("pgd", {"eps": 1.0, "steps": 3, "norm": "l2"}),
        ("gaussian_noise", {"sigma": 0.2, "trials": 2}),
        ("occlusion", {"size": 3, "trials": 2}),
        ("square", {"eps": 0.1, "n_queries": 20}),
    ]
)


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(specs=st.lists(_SPECS, min_size=1, max_size=3), standalone=st.booleans())
def test_worst_case_invariants_hold_for_any_suite(
    digits_cnn: nn.Module,
    digits: Dataset,
    threat: Threat,
    specs: list[tuple[str, dict[str, Any]]],
    standalone: bool,
) -> None:
    config = SMALL.model_copy(update={"max_samples": 40, "standalone": standalone})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # square may beat a weak pgd: black_box_stronger
        record = evaluate(digits_cnn, digits, threat(*specs), config)
    assert all(isinstance(w.message, EvaluationWarning) for w in caught)
    assert set(record.flag_codes) <= {FlagCode.BLACK_BOX_STRONGER}
    assert_worst_case_consistent(record)
    if not standalone:
        assert all(a.robust_accuracy is None for a in record.attacks)
        # lazy: every sample is broken at most once, by the first attack that fools it
        assert sum(a.success_count for a in record.attacks) == sum(
            len(a.broken_ids) for a in record.attacks
        )


def test_lazy_and_standalone_agree_per_sample(
    digits_cnn: nn.Module, digits: Dataset, threat: Threat
) -> None:
    suite = threat(*DETERMINISTIC)
    full = evaluate(digits_cnn, digits, suite, SMALL)
    lazy = evaluate(digits_cnn, digits, suite, SMALL.model_copy(update={"standalone": False}))
    assert full.robust_mask == lazy.robust_mask
    assert full.worst_case_accuracy == lazy.worst_case_accuracy
    assert [a.cumulative_accuracy for a in full.attacks] == [
        a.cumulative_accuracy for a in lazy.attacks
    ]
    # lazy attacks only see what is still standing ...
    assert [a.attacked for a in lazy.attacks][1:] < [a.attacked for a in full.attacks][1:]
    # ... and what they break is exactly the standalone break minus earlier breaks
    earlier: set[int] = set()
    for f, z in zip(full.attacks, lazy.attacks, strict=True):
        assert set(z.broken_ids) == set(f.broken_ids) - earlier
        earlier |= set(f.broken_ids)
    # the worst-case input of each sample (first success, else last attack) is the same
    assert full.ece_adversarial == pytest.approx(lazy.ece_adversarial, abs=1e-6)
    assert full.calibration_adversarial.count == lazy.calibration_adversarial.count


def test_record_contents(digits_cnn: nn.Module, digits: Dataset, threat: Threat) -> None:
    suite = threat(("fgsm", {"eps": 0.1}), ("pgd", {"eps": 0.3, "steps": 10}))
    record = evaluate(digits_cnn, digits, suite, SMALL)
    n = 64
    assert record.n_samples == n
    assert record.sample_ids == tuple(int(i) for i in digits.test.ids[:n])
    assert record.dataset == digits.name
    assert record.dataset_fingerprint == digits.fingerprint
    assert record.classes == digits.classes
    assert record.config == SMALL
    assert record.threat_model_fingerprint == suite.fingerprint()
    assert record.attack_library_version == attacks.LIBRARY_VERSION
    assert record.attack_manifest_digest == attacks.manifest_digest()
    assert record.torch_threads == torch.get_num_threads()
    assert record.started_at <= record.finished_at
    # clean accuracy recomputed by hand
    x, y = digits.test.tensors()
    with torch.no_grad():
        predicted = digits_cnn(x[:n]).argmax(dim=1)
    assert record.clean_accuracy == pytest.approx(float((predicted == y[:n]).double().mean()))
    # per class: counts and weighted means
    per_class = record.per_class
    assert [c.label for c in per_class] == list(digits.classes)
    assert sum(c.count for c in per_class) == n
    weighted = sum(c.count * (c.clean_accuracy or 0.0) for c in per_class) / n
    assert weighted == pytest.approx(record.clean_accuracy)
    weighted = sum(c.count * (c.robust_accuracy or 0.0) for c in per_class) / n
    assert weighted == pytest.approx(record.worst_case_accuracy)
    # calibration covers every sample; pgd at 0.3 breaks the undefended model
    assert sum(record.calibration_clean.count) == n
    assert sum(record.calibration_adversarial.count) == n
    assert record.calibration_clean.bins == record.config.ece_bins == 15
    assert record.worst_case_accuracy <= 0.05
    assert record.ece_adversarial > record.ece_clean
    pgd = record.attack("pgd")
    assert pgd.params["eps"] == 0.3
    assert pgd.norm.value == "linf"
    assert pgd.budget == 0.3
    assert pgd.version == attacks.get("pgd").version
    assert pgd.seconds > 0
    assert set(pgd.broken_ids) <= set(record.sample_ids)
    # latency
    latency = record.latency
    assert latency.single_samples == 5
    assert 0 < latency.p50_ms <= latency.p95_ms
    assert latency.batched_ms_per_sample > 0
    assert latency.batch_size == 32


def test_evaluation_is_deterministic_and_leaves_rng_and_mode_alone(
    digits_cnn: nn.Module, digits: Dataset, threat: Threat
) -> None:
    suite = threat(("pgd", {"eps": 0.05, "steps": 3}), ("gaussian_noise", {"sigma": 0.3}))
    digits_cnn.eval()  # the fixture is shared: fix the mode this test checks is kept
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = evaluate(digits_cnn, digits, suite, SMALL)
    assert torch.equal(torch.get_rng_state(), state)
    second = evaluate(digits_cnn, digits, suite, SMALL)
    assert _timeless(first) == _timeless(second)
    other = evaluate(digits_cnn, digits, suite, SMALL.model_copy(update={"seed": 7}))
    assert other.attack("pgd").params["seed"] == 7
    assert first.attack("pgd").params["seed"] == 0
    assert not digits_cnn.training


def test_a_split_can_be_evaluated_and_max_samples_beyond_it_is_fine(
    digits_cnn: nn.Module, digits: Dataset, threat: Threat
) -> None:
    split = digits.test.subset(slice(0, 20))
    record = evaluate(
        digits_cnn,
        split,
        threat(("fgsm", {"eps": 0.1})),
        SMALL.model_copy(update={"max_samples": 500}),
    )
    assert record.n_samples == 20
    assert record.dataset is None
    assert record.classes == tuple(str(i) for i in range(10))


def test_empty_suite_is_flagged(digits_cnn: nn.Module, digits: Dataset) -> None:
    with pytest.warns(EvaluationWarning, match="empty_suite"):
        record = evaluate(digits_cnn, digits, ThreatModel(), SMALL)
    assert record.worst_case_accuracy == record.clean_accuracy
    assert record.attacks == ()


def test_a_bad_suite_fails_before_any_work(
    digits_cnn: nn.Module, digits: Dataset, threat: Threat
) -> None:
    with pytest.raises(ConfigError) as info:
        evaluate(digits_cnn, digits, threat(("fgsm", {}), ("pgd", {"eps": -1.0})), source="x.yaml")
    assert info.value.path == "threat_model.image.attacks[1].params.eps"
    assert str(info.value).startswith("x.yaml: ")


def test_bad_data_and_models_get_clear_errors(
    digits_cnn: nn.Module, digits: Dataset, threat: Threat
) -> None:
    suite = threat(("fgsm", {"eps": 0.1}))
    with pytest.raises(EvaluationError, match="Dataset or Split; got ndarray"):
        evaluate(digits_cnn, np.zeros((3, 1, 8, 8)), suite)  # type: ignore[arg-type]
    x = digits.test.x[:8]
    raw = Split(x * 16.0, digits.test.y[:8], digits.test.ids[:8])
    with pytest.raises(EvaluationError, match=r"must be in \[0, 1\]"):
        evaluate(digits_cnn, raw, suite)
    five = nn.Sequential(digits_cnn, nn.Linear(10, 5))
    with pytest.raises(EvaluationError, match="outputs 5 classes but the dataset has 10"):
        evaluate(five, digits, suite, SMALL)
    with pytest.raises(EvaluationError, match=r"outputs \(N, classes\)"):
        evaluate(nn.Flatten(0), digits, suite, SMALL)
    nan_model = nn.Sequential(digits_cnn, nn.Softplus(threshold=-1.0), nn.Identity())

    def broken(inputs: torch.Tensor) -> torch.Tensor:
        return nan_model(inputs) * float("nan")

    with pytest.raises(EvaluationError, match="NaN or inf outputs"):
        evaluate(broken, digits, suite, SMALL)
    empty = digits.test.subset(slice(0, 0))
    with pytest.raises(EvaluationError, match="no samples"):
        evaluate(digits_cnn, empty, suite)
