"""How the text channel hardens a filter (owned by the text-channel issue).

text:
  sanitize: true              # train and serve behind bastion.defend.text.Sanitizer
  rounds: 2                   # adversarial augmentation rounds
  examples_per_round: 400     # training examples attacked per round
  attacks:                    # default: the threat model's text attacks
    - {name: text_char, params: {max_queries: 60}}
"""

from __future__ import annotations

from pydantic import Field

from bastion.config.base import Section
from bastion.config.threat import AttackSpec

__all__ = ["TextHardeningConfig"]


class TextHardeningConfig(Section):
    """Sanitising and adversarial data augmentation for a text classifier."""

    sanitize: bool = Field(default=True, description="train and serve behind the sanitiser")
    rounds: int = Field(default=2, ge=0, description="augmentation rounds; 0: none")
    examples_per_round: int = Field(default=400, ge=1, description="examples attacked per round")
    max_added: int | None = Field(
        default=None, ge=1, description="adversarial examples added in total, at most"
    )
    attacked_classes: list[int] = Field(
        default_factory=lambda: [1], description="classes an attacker disguises (spam: 1)"
    )
    positive_class: int = Field(default=1, ge=0, description="the class whose F1 is reported")
    attacks: list[AttackSpec] = Field(
        default_factory=list,
        description="augmentation attacks; empty: the threat model's strongest on the baseline",
    )
    strongest_attacks: int = Field(
        default=2,
        ge=1,
        description="with no 'attacks': how many of the threat model's text attacks (those "
        "with the highest evasion rate on the baseline) generate the augmentation",
    )
    seed: int = 0
