"""Turning a threat model's declared attacks into built attack objects.

The threat model keeps attack parameters as free-form mappings (each attack declares its own
table), so they are only checked here, when the suite is built. That is also the one place
that still knows where each attack came from, so every failure is reported as a
:class:`~bastion.errors.ConfigError` naming the file and the field path
(``threat_model.image.attacks[1].params.eps``), never as a bare attack error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bastion import attacks
from bastion.attacks import Attack, Modality
from bastion.config import AttackSpec, Channel, ThreatModel
from bastion.errors import AttackError, ConfigError, ParameterError

__all__ = ["SuiteEntry", "build_entries", "build_suite", "order_by_cost"]


@dataclass(frozen=True, kw_only=True)
class SuiteEntry:
    """A built attack with its display label and its position in the threat-model file."""

    label: str
    attack: Attack
    index: int

    @property
    def path(self) -> str:
        return f"attacks[{self.index}]"


def build_entries(
    threat_model: ThreatModel,
    channel: Channel | str = Channel.IMAGE,
    *,
    source: str | None = None,
    seed: int | None = None,
) -> list[SuiteEntry]:
    """Build every attack of ``channel`` in file order, each with a unique label.

    ``seed``, when given, becomes the ``seed`` parameter of attacks whose spec sets none, so
    that one evaluation seed makes the whole suite reproducible.
    """
    try:
        chan = Channel(channel)
    except ValueError as exc:
        allowed = ", ".join(c.value for c in Channel)
        raise ConfigError(f"unknown channel {channel!r}; expected one of {allowed}") from exc
    specs = threat_model.channel(chan).attacks
    base = f"threat_model.{chan.value}.attacks"
    labels = _labels(specs, base, source)
    entries = []
    for i, spec in enumerate(specs):
        attack = _build(spec, f"{base}[{i}]", chan, source, seed)
        entries.append(SuiteEntry(label=labels[i], attack=attack, index=i))
    return entries


def build_suite(
    threat_model: ThreatModel,
    channel: Channel | str = Channel.IMAGE,
    *,
    source: str | None = None,
    seed: int | None = None,
) -> list[Attack]:
    """The attacks of ``channel``, built and validated, in the order the file lists them."""
    return [e.attack for e in build_entries(threat_model, channel, source=source, seed=seed)]


def order_by_cost(entries: Sequence[SuiteEntry]) -> list[SuiteEntry]:
    """Cheapest first (``Attack.cost()``); ties keep the file order (the sort is stable)."""
    return sorted(entries, key=lambda e: e.attack.cost())


def _labels(specs: Sequence[AttackSpec], base: str, source: str | None) -> list[str]:
    explicit: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.label is None:
            continue
        if spec.label in explicit:
            raise ConfigError(
                f"duplicate label {spec.label!r} (also used by attacks[{explicit[spec.label]}]);"
                " labels name rows of the results and must be unique",
                source=source,
                path=f"{base}[{i}].label",
            )
        explicit[spec.label] = i
    default_names = [s.name for s in specs if s.label is None]
    labels = []
    for i, spec in enumerate(specs):
        if spec.label is not None:
            labels.append(spec.label)
        elif default_names.count(spec.name) > 1 or spec.name in explicit:
            labels.append(f"{spec.name}[{i}]")
        else:
            labels.append(spec.name)
    return labels


def _build(
    spec: AttackSpec, path: str, channel: Channel, source: str | None, seed: int | None
) -> Attack:
    try:
        cls = attacks.get(spec.name)
    except AttackError as exc:
        raise ConfigError(str(exc), source=source, path=f"{path}.name") from exc
    if cls.modality is not Modality(channel.value):
        raise ConfigError(
            f"attack {spec.name!r} is a {cls.modality.value} attack; the {channel.value} "
            f"channel needs one of: {', '.join(attacks.names(channel.value))}",
            source=source,
            path=f"{path}.name",
        )
    params: dict[str, Any] = dict(spec.params)
    if seed is not None and "seed" in cls.params and "seed" not in params:
        params["seed"] = seed
    try:
        return cls(**params)
    except ParameterError as exc:
        message = str(exc)
        if exc.param not in cls.params:
            message = f"unknown parameter {exc.param!r} of {spec.name}; expected {exc.expected}"
        raise ConfigError(message, source=source, path=f"{path}.params.{exc.param}") from exc
    except AttackError as exc:
        raise ConfigError(str(exc), source=source, path=f"{path}.params") from exc
