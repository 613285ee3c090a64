"""Text attacks: black-box perturbations of strings against any ``predict_proba`` classifier,
with an exact per-example query budget and an edit budget (see :mod:`.base`)."""

from bastion.attacks.text.base import (
    QueryBudgetExhaustedError,
    QueryCounter,
    TextAttack,
    TextAttackResult,
    TextAttackRun,
    TextModel,
)

__all__ = [
    "QueryBudgetExhaustedError",
    "QueryCounter",
    "TextAttack",
    "TextAttackResult",
    "TextAttackRun",
    "TextModel",
]
