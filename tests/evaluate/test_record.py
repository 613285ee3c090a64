"""The evaluation record survives JSON, refuses what it cannot read, and feeds the gate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from torch import nn

from bastion.config import EvaluationConfig, GatePolicy, ThreatModel
from bastion.data import Dataset
from bastion.errors import EvaluationError
from bastion.evaluate import EvaluationRecord, EvaluationWarning, FlagCode, evaluate
from bastion.evaluate.gate import gate_metrics

Threat = Callable[..., ThreatModel]
SMALL = EvaluationConfig(max_samples=48, latency_samples=5)


@pytest.fixture
def flagged_record(softmax_model: nn.Module, digits: Dataset, threat: Threat) -> EvaluationRecord:
    suite = threat(("fgsm", {"eps": 0.1}), ("pgd", {"eps": 0.2, "steps": 3, "norm": "linf"}))
    with pytest.warns(EvaluationWarning, match="softmax_outputs"):
        return evaluate(softmax_model, digits, suite, SMALL)


def test_json_round_trip(flagged_record: EvaluationRecord) -> None:
    text = flagged_record.to_json()
    again = EvaluationRecord.from_json(text)
    assert again == flagged_record
    assert again.to_dict() == flagged_record.to_dict()
    assert again.flag_codes == (FlagCode.SOFTMAX_OUTPUTS,)
    data = json.loads(text)
    assert data["schema_version"] == 1
    assert data["robust_mask"] == "".join("1" if r else "0" for r in flagged_record.robust_mask)
    assert data["flags"][0]["code"] == "softmax_outputs"
    assert data["attacks"][0]["norm"] == "linf"


def test_save_and_load(flagged_record: EvaluationRecord, tmp_path: Path) -> None:
    path = flagged_record.save(tmp_path / "sub" / "evaluation.json")
    assert EvaluationRecord.load(path) == flagged_record
    assert [p.name for p in path.parent.iterdir()] == ["evaluation.json"]  # no temp left


def test_unreadable_records_are_refused(flagged_record: EvaluationRecord, tmp_path: Path) -> None:
    data = flagged_record.to_dict()
    with pytest.raises(EvaluationError, match="schema_version must be 1; got 99"):
        EvaluationRecord.from_dict({**data, "schema_version": 99})
    missing = {k: v for k, v in data.items() if k != "latency"}
    with pytest.raises(EvaluationError, match="missing field 'latency'"):
        EvaluationRecord.from_dict(missing)
    with pytest.raises(EvaluationError, match="robust_mask"):
        EvaluationRecord.from_dict({**data, "robust_mask": "01x"})
    with pytest.raises(EvaluationError, match="not valid JSON"):
        EvaluationRecord.from_json("{")
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(EvaluationError, match=r"bad\.json"):
        EvaluationRecord.load(bad)
    with pytest.raises(EvaluationError, match="cannot read"):
        EvaluationRecord.load(tmp_path / "absent.json")


def test_the_gate_reads_the_record(flagged_record: EvaluationRecord) -> None:
    metrics = gate_metrics(flagged_record.to_dict())
    assert metrics.clean_accuracy == flagged_record.clean_accuracy
    assert metrics.robust_accuracy == flagged_record.worst_case_accuracy
    assert metrics.adversarial_ece == flagged_record.ece_adversarial
    assert metrics.latency_p95_ms == flagged_record.latency.p95_ms
    assert metrics.flags == ("softmax_outputs",)
    assert metrics.threat_model == flagged_record.threat_model_fingerprint
    assert GatePolicy().forbidden_flags  # a default policy refuses a flagged record
