"""The threat model: per input channel, the attacks a model must withstand.

A threat model names attacks from the registry with their parameters (budgets included), so
that training, evaluation, gating and monitoring all measure against the same declared
adversary. Parameters are checked against each attack's declared constraints when the suite
is built (``bastion.evaluate.suite``), which reports the file and field path on error.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from pydantic import Field

from bastion.config.base import Section

__all__ = ["AttackSpec", "Channel", "ChannelThreat", "ThreatModel"]


class Channel(StrEnum):
    IMAGE = "image"
    TEXT = "text"
    TABULAR = "tabular"


class AttackSpec(Section):
    """One attack of the suite: a registry name and its parameters."""

    name: str = Field(min_length=1, description="registry name, e.g. 'pgd' or 'apgd_ce'")
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = Field(default=None, description="display name; defaults to name")

    @property
    def display_name(self) -> str:
        return self.label or self.name


class ChannelThreat(Section):
    """The attacks on one input channel, in the order given (evaluation sorts by cost)."""

    attacks: list[AttackSpec] = Field(default_factory=list)


class ThreatModel(Section):
    """What an attacker may do, per input channel."""

    name: str = "default"
    description: str = ""
    image: ChannelThreat | None = None
    text: ChannelThreat | None = None
    tabular: ChannelThreat | None = None

    def channel(self, channel: Channel | str) -> ChannelThreat:
        """The section for ``channel``; an empty one if the file declares none."""
        section = getattr(self, Channel(channel).value)
        return section if section is not None else ChannelThreat()

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON form: equal threat models hash equally."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()
