"""Text evaluation: the standard record and the spam-filter view agree with the attack runs
and with independent computations, and the record survives a JSON round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score as sklearn_f1

from bastion.config import AttackSpec, ChannelThreat, EvaluationConfig, ThreatModel
from bastion.data.sms_spam import read_messages
from bastion.errors import ConfigError, EvaluationError
from bastion.evaluate import EvaluationRecord
from bastion.evaluate.text import evaluate_text
from bastion.models.text import TfidfLogReg

THREAT = ThreatModel(
    name="sms-test",
    text=ChannelThreat(
        attacks=[
            AttackSpec(name="text_char", params={"max_queries": 40, "edits_per_word": 2}),
            AttackSpec(name="text_homoglyph", params={"max_queries": 40}),
        ]
    ),
)


@pytest.fixture(scope="module")
def setup(shared_data: Path) -> tuple[TfidfLogReg, list[str], np.ndarray]:
    texts, labels = read_messages(shared_data / "sms_spam")
    model = TfidfLogReg(ngram_max=4, max_iter=300).fit(texts[::4], labels[::4])
    # 120 held-out messages, a quarter of them spam
    ham = [i for i in range(1, len(texts), 4) if labels[i] == 0][:90]
    spam = [i for i in range(1, len(texts), 4) if labels[i] == 1][:30]
    rows = sorted(ham + spam)
    return model, [texts[i] for i in rows], labels[rows]


def test_views_agree_with_the_runs_and_each_other(
    setup: tuple[TfidfLogReg, list[str], np.ndarray],
) -> None:
    model, texts, labels = setup
    evaluation = evaluate_text(model, texts, labels, THREAT, EvaluationConfig(latency_samples=5))
    record, text = evaluation.record, evaluation.robustness
    predicted = model.predict_proba(texts).argmax(axis=1)
    assert record.clean_accuracy == pytest.approx(np.mean(predicted == labels))
    assert text.positive_f1 == pytest.approx(sklearn_f1(labels, predicted))
    caught = int(np.sum((predicted == 1) & (labels == 1)))
    for outcome in text.attacks:
        run = evaluation.runs[outcome.label]
        wins = [r for r in run.results if r.success]
        assert outcome.attacked == caught == len(run.results)  # only spam is attacked
        assert outcome.successes == len(wins)
        assert outcome.evasion_rate == pytest.approx(len(wins) / caught)
        assert outcome.mean_queries_per_success <= 40
        assert record.attack(outcome.label).robust_accuracy == pytest.approx(
            record.clean_accuracy - len(wins) / len(texts)
        )
        robust = record.attack(outcome.label).robust_accuracy
        assert robust is not None
        assert record.worst_case_accuracy <= robust
    assert max(a.evasion_rate for a in text.attacks) <= text.worst_case_evasion_rate
    strongest = text.strongest()
    assert strongest is not None
    assert strongest.successes > 0
    assert record.per_class[0].robust_accuracy == record.per_class[0].clean_accuracy  # ham
    again = EvaluationRecord.from_json(record.to_json())
    assert again.to_dict() == record.to_dict()
    assert set(evaluation.to_dict(examples=2)["examples"]) == {"text_char", "text_homoglyph"}


def test_bad_inputs(setup: tuple[TfidfLogReg, list[str], np.ndarray]) -> None:
    model, texts, labels = setup
    with pytest.raises(EvaluationError, match="one label and one id"):
        evaluate_text(model, texts, labels[:-1], THREAT)
    image = ThreatModel(text=ChannelThreat(attacks=[AttackSpec(name="fgsm")]))
    with pytest.raises(ConfigError, match="image attack"):
        evaluate_text(model, texts, labels, image)
    with pytest.raises(EvaluationError, match="positive class"):
        evaluate_text(model, texts, labels, THREAT, positive=5)
