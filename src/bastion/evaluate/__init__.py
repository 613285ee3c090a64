"""The robustness evaluation: a model against a whole threat model, measured per sample.

``evaluate(model, dataset, threat_model)`` runs the threat model's attacks cheapest first and
counts a sample as robust only if it survives every one of them; alongside it measures
calibration (ECE on clean and worst-case adversarial inputs), clean latency, and the sanity
checks that say when the number cannot be trusted. Everything lands in one
:class:`EvaluationRecord`, the single source of every number a report, gate or registry row
shows.

    >>> record = evaluate(model, dataset, config.threat_model)    # doctest: +SKIP
    >>> record.worst_case_accuracy, record.flag_codes              # doctest: +SKIP
"""

from bastion.evaluate.checks import EvaluationWarning, Flag, FlagCode
from bastion.evaluate.engine import evaluate
from bastion.evaluate.metrics import (
    Reliability,
    accuracy,
    expected_calibration_error,
    per_class_accuracy,
    reliability,
    reliability_from_logits,
)
from bastion.evaluate.record import (
    SCHEMA_VERSION,
    AttackResult,
    ClassResult,
    EvaluationRecord,
    Latency,
)
from bastion.evaluate.suite import SuiteEntry, build_entries, build_suite, order_by_cost

__all__ = [
    "SCHEMA_VERSION",
    "AttackResult",
    "ClassResult",
    "EvaluationRecord",
    "EvaluationWarning",
    "Flag",
    "FlagCode",
    "Latency",
    "Reliability",
    "SuiteEntry",
    "accuracy",
    "build_entries",
    "build_suite",
    "evaluate",
    "expected_calibration_error",
    "order_by_cost",
    "per_class_accuracy",
    "reliability",
    "reliability_from_logits",
]
