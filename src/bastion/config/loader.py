"""Reading a YAML file into a validated :class:`BastionConfig`, with errors that name the
file, the field path, what was expected and what was given."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bastion.config.schema import BastionConfig
from bastion.errors import ConfigError

__all__ = ["format_location", "load_config", "parse_config"]

_MAX_SHOWN = 10


def format_location(loc: Iterable[int | str]) -> str:
    """``('a', 'b', 1, 'c')`` -> ``a.b[1].c``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; unknown keys are errors)"
    if kind == "missing":
        return "required field is missing"
    got = error.get("input")
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{error.get('msg', 'invalid value')}; got {shown}"


def _translate(exc: ValidationError, source: str | None) -> ConfigError:
    errors = exc.errors()
    lines = [f"{format_location(e['loc']) or '<root>'}: {_describe(e)}" for e in errors]
    shown = lines[:_MAX_SHOWN]
    if len(lines) > _MAX_SHOWN:
        shown.append(f"... and {len(lines) - _MAX_SHOWN} more")
    first = errors[0]
    if len(lines) == 1:
        return ConfigError(
            _describe(first), source=source, path=format_location(first["loc"]) or "<root>"
        )
    message = f"{len(lines)} invalid fields:\n  " + "\n  ".join(shown)
    return ConfigError(message, source=source)


def _apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"cannot set {dotted!r}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value


def parse_config(
    raw: Any, *, source: str | None = None, overrides: Mapping[str, Any] | None = None
) -> BastionConfig:
    """Validate an already-parsed mapping (e.g. from a test) into a config."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"the top level must be a mapping of sections; got {type(raw).__name__}",
            source=source,
        )
    if overrides:
        _apply_overrides(raw, overrides)
    try:
        config = BastionConfig.model_validate(raw)
    except ValidationError as exc:
        raise _translate(exc, source) from exc
    config._source = source
    return config


def load_config(path: str | Path, *, overrides: Mapping[str, Any] | None = None) -> BastionConfig:
    """Load and validate ``path``. ``overrides`` maps dotted keys (``data.path``) to values.

    Relative ``path`` values inside the file stay relative to the working directory, as a
    user typing a command expects.
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("file not found", source=source) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc}", source=source) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML{where}: {problem}", source=source) from exc
    if raw is None:
        raise ConfigError("the file is empty", source=source)
    return parse_config(raw, source=source, overrides=overrides)
