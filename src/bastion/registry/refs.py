"""One parser for the ways a person names a model version, so every command agrees.

``NAME:VERSION`` names one version, ``NAME@STAGE`` whatever version holds that stage now,
and a bare ``NAME`` (where a caller allows it) the latest version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bastion.errors import RegistryError
from bastion.registry.records import Stage, as_enum

__all__ = ["NAME_PATTERN", "ModelRef", "check_name", "parse_ref"]

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_NAME = re.compile(rf"^{NAME_PATTERN}$")
_REF = re.compile(rf"^(?P<name>{NAME_PATTERN})(?:(?P<sep>[:@])(?P<tail>.*))?$")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed reference: exactly one of ``version`` and ``stage`` is set, or neither."""

    name: str
    version: int | None = None
    stage: Stage | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.stage is not None:
            return f"{self.name}@{self.stage.value}"
        return self.name


def check_name(name: str, what: str = "model name") -> str:
    """Return ``name`` if it is a valid registry name, else raise naming the rule."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 200:
        raise RegistryError(
            f"invalid {what} {name!r}: use letters, digits, '_', '.', '-' "
            "(starting with a letter or digit, at most 200 characters)"
        )
    return name


def parse_ref(text: str | ModelRef, *, allow_bare: bool = True) -> ModelRef:
    """Parse ``NAME:VERSION``, ``NAME@STAGE`` or (if ``allow_bare``) ``NAME``.

    Raises :class:`~bastion.errors.RegistryError` for malformed text; whether the
    reference exists is the registry's question (it raises ``NotFoundError``).
    """
    if isinstance(text, ModelRef):
        return text
    expected = "NAME:VERSION or NAME@STAGE" + (" or NAME" if allow_bare else "")
    match = _REF.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise RegistryError(f"invalid model reference {text!r}: expected {expected}")
    name, sep, tail = match.group("name"), match.group("sep"), match.group("tail")
    check_name(name)
    if sep is None:
        if not allow_bare:
            raise RegistryError(f"invalid model reference {text!r}: expected {expected}")
        return ModelRef(name=name)
    if sep == ":":
        if not re.fullmatch(r"[0-9]{1,9}", tail) or int(tail) < 1:
            raise RegistryError(
                f"invalid model reference {text!r}: the version after ':' must be a "
                f"positive integer, got {tail!r}"
            )
        return ModelRef(name=name, version=int(tail))
    stage = as_enum(Stage, tail, f"the stage in model reference {text!r}")
    return ModelRef(name=name, stage=stage)
