"""Bastion's one exception hierarchy.

Every error Bastion raises on purpose is a :class:`BastionError`. Lower-level errors
(``OSError``, ``pydantic.ValidationError``, ``sqlalchemy`` errors, ``torch`` load errors) are
re-raised as one of these with ``raise ... from exc`` at the boundary where they happen, so
that callers catch one family and each front end translates it once: the CLI prints
``Type: message`` and exits 1; the HTTP service maps each class to a status code.

    BastionError
    ├── ConfigError            a configuration file or value is invalid
    ├── DataError              a dataset file is missing, corrupt or inconsistent
    ├── ModelError             a model artifact is missing, truncated or mismatched
    ├── AttackError            an attack cannot run as asked
    │   ├── ParameterError     a parameter is outside its declared constraint
    │   └── BudgetViolation    an attack returned inputs outside its budget or range
    ├── EvaluationError        an evaluation cannot be carried out
    ├── TrainingError          training cannot continue (e.g. a non-finite loss)
    ├── RegistryError          the registry refused or failed a read/write
    │   ├── NotFoundError      a referenced record does not exist
    │   └── IntegrityError     stored records fail verification (e.g. the audit chain)
    ├── GateError              a gate could not be evaluated (not: the gate failed)
    ├── ServeError             the server cannot start as configured
    └── RejectionError         a defence layer refused one request (HTTP status + stable code)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AttackError",
    "BastionError",
    "BudgetViolation",
    "ConfigError",
    "DataError",
    "EvaluationError",
    "GateError",
    "IntegrityError",
    "ModelError",
    "NotFoundError",
    "ParameterError",
    "RegistryError",
    "RejectionError",
    "ServeError",
    "TrainingError",
]


class BastionError(Exception):
    """Base class of every error Bastion raises on purpose."""


class ConfigError(BastionError):
    """A configuration file or value is invalid.

    ``source`` is the file (or ``None`` for values built in code) and ``path`` the dotted
    field path, e.g. ``threat_model.image.attacks[1].params.eps``.
    """

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None):
        self.source = source
        self.path = path
        where = ": ".join(p for p in (source, path) if p)
        super().__init__(f"{where}: {message}" if where else message)


class DataError(BastionError):
    """A dataset file is missing, corrupt or inconsistent."""


class ModelError(BastionError):
    """A model artifact is missing, truncated or does not match its description."""


class AttackError(BastionError):
    """An attack cannot run as asked."""


class ParameterError(AttackError, ValueError):
    """A parameter is outside its declared constraint.

    The message follows one form: ``The 'eps' parameter of pgd must be a float in (0, 1].
    Got -0.1 instead.`` ``param``, ``owner``, ``expected`` and ``got`` are kept for callers
    that re-raise it with more context (the config loader adds the file and field path).
    """

    def __init__(self, owner: str, param: str, expected: str, got: Any):
        self.owner = owner
        self.param = param
        self.expected = expected
        self.got = got
        super().__init__(
            f"The {param!r} parameter of {owner} must be {expected}. Got {got!r} instead."
        )


class BudgetViolation(AttackError):
    """An attack returned inputs outside its budget or outside the valid input range."""


class EvaluationError(BastionError):
    """An evaluation cannot be carried out."""


class TrainingError(BastionError):
    """Training cannot continue (e.g. a non-finite loss); the last good checkpoint is kept."""


class RegistryError(BastionError):
    """The registry refused or failed a read or a write."""


class NotFoundError(RegistryError):
    """A referenced registry record does not exist."""


class IntegrityError(RegistryError):
    """Stored records fail verification (e.g. a broken audit hash chain)."""


class GateError(BastionError):
    """A gate could not be evaluated (missing evaluation, bad policy) — not a failed gate."""


class ServeError(BastionError):
    """The server cannot start as configured."""


class RejectionError(BastionError):
    """A defence layer refused one request; the server keeps running (unlike ServeError).

    ``status`` is the HTTP status and ``code`` a stable string clients may branch on;
    ``layer`` names the refusing layer. ``field`` names the offending part of the input
    (``inputs[2][0][3][1]``) when there is one; ``headers`` are extra response headers
    (``Retry-After``). ``message`` is the text without the field prefix.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        layer: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.layer = layer
        self.field = field
        self.headers = dict(headers or {})
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
