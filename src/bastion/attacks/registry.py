"""The attack registry: every attack by name, each with its own version, and a manifest of
the whole library (its version plus every attack's name, version, modality, norm and
parameters) that lineage records and `bastion attacks list` prints.

The manifest is also committed as ``MANIFEST.json`` beside this module, so that a change to
the library shows up in review: after changing an attack, bump its ``version`` and
:data:`LIBRARY_VERSION`, then regenerate the file with ``python -m bastion.attacks``
(:func:`write_manifest`). ``tests/attacks/test_manifest.py`` fails until both are done."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from bastion.attacks.base import Attack, Modality
from bastion.errors import AttackError

__all__ = [
    "LIBRARY_VERSION",
    "MANIFEST_PATH",
    "create",
    "get",
    "manifest",
    "manifest_digest",
    "names",
    "register",
    "write_manifest",
]

#: Version of the attack library as a whole. Bump it whenever any attack's version changes,
#: an attack is added or removed; ``tests/attacks/test_manifest.py`` enforces this against
#: the committed ``MANIFEST.json``.
LIBRARY_VERSION = "1.1.0"

#: The committed manifest (shipped as package data).
MANIFEST_PATH = Path(__file__).resolve().with_name("MANIFEST.json")

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REGISTRY: dict[str, type[Attack]] = {}

A = TypeVar("A", bound=type[Attack])


def register(cls: A) -> A:
    """Class decorator: add ``cls`` to the registry under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise AttackError(f"{cls.__name__}: 'name' must match {_NAME.pattern}; got {name!r}")
    if not _SEMVER.match(getattr(cls, "version", "")):
        raise AttackError(f"{cls.__name__}: 'version' must be MAJOR.MINOR.PATCH")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise AttackError(f"attack name {name!r} is already taken by {existing.__name__}")
    _REGISTRY[name] = cls
    return cls


def get(name: str) -> type[Attack]:
    """The attack class registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise AttackError(f"unknown attack {name!r}; known attacks: {known}") from None


def create(name: str, **params: Any) -> Attack:
    """Build the attack ``name`` with keyword parameters (validated against its table)."""
    return get(name)(**params)


def names(modality: Modality | str | None = None) -> list[str]:
    """Registered names, sorted; only those of ``modality`` when given."""
    wanted = Modality(modality) if modality is not None else None
    return sorted(n for n, c in _REGISTRY.items() if wanted is None or c.modality == wanted)


def _param_entry(spec: Any) -> dict[str, Any]:
    default = spec.default
    if not isinstance(default, str | int | float | bool | type(None)):
        default = repr(default)
    return {"default": default, "allowed": spec.constraint.describe(), "doc": spec.doc}


def manifest() -> dict[str, Any]:
    """The library's identity: its version and every attack's declared interface."""
    attacks = []
    for name in names():
        cls = _REGISTRY[name]
        doc = (cls.__doc__ or "").strip().splitlines()
        attacks.append(
            {
                "name": name,
                "version": cls.version,
                "modality": cls.modality.value,
                "norm": _norm_of(cls),
                "uses_gradients": cls.uses_gradients,
                "summary": doc[0] if doc else "",
                "params": {k: _param_entry(v) for k, v in cls.params.items()},
            }
        )
    return {"library_version": LIBRARY_VERSION, "attacks": attacks}


def _norm_of(cls: type[Attack]) -> str:
    """The norm(s) an attack class measures its budget in, for the manifest."""
    norm_param = cls.params.get("norm")
    if norm_param is not None and hasattr(norm_param.constraint, "values"):
        return "|".join(str(v) for v in norm_param.constraint.values)
    try:
        return cls().norm.value
    except AttackError:
        return "?"


def manifest_digest() -> str:
    """sha256 of the manifest's name/version pairs: changes iff an attack changes version."""
    pairs = [(a["name"], a["version"]) for a in manifest()["attacks"]]
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def write_manifest(path: Path | str | None = None) -> Path:
    """Write :func:`manifest` as stable, human-diffable JSON (sorted keys, two-space indent,
    trailing newline) to ``path`` (default :data:`MANIFEST_PATH`), atomically; return it."""
    target = Path(path) if path is not None else MANIFEST_PATH
    text = json.dumps(manifest(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
