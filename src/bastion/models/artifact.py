"""The model artifact: a folder that rebuilds its own network and refuses to load if broken.

Layout (``FORMAT_VERSION`` 1)::

    folder/
      weights.pt    state_dict written by torch.save; read back with weights_only=True,
                    so an artifact can never run code when loaded
      model.json    format_version, architecture, arguments, input_shape, classes,
                    input_scaling, extra, weights_sha256

The JSON names a registered architecture and its arguments, so :func:`load` needs nothing
but the folder. ``weights_sha256`` ties the two files together: a truncated, corrupted or
swapped weights file is caught before it is unpickled. Writes go to a temporary sibling
folder that is renamed into place, so a crash never leaves half an artifact: a new folder
appears complete or not at all. Replacing an existing artifact takes two renames (old aside,
new in); a crash between them leaves the old one complete under ``.<name>.<hex>.old``.
``extra`` (e.g. a calibration temperature) is rewritten with one atomic file replace.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import ConfigDict, StringConstraints, TypeAdapter, ValidationError
from torch import nn

from bastion.errors import ModelError
from bastion.models.architectures import build

__all__ = [
    "FORMAT_VERSION",
    "SPEC_FILE",
    "WEIGHTS_FILE",
    "ModelSpec",
    "load",
    "read_spec",
    "save",
    "update_extra",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.pt"
SPEC_FILE = "model.json"
_ARTIFACT_FILES = frozenset({WEIGHTS_FILE, SPEC_FILE})

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What ``model.json`` says: enough to rebuild the network and to feed it correctly."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    architecture: str
    arguments: dict[str, Any]
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    input_scaling: dict[str, float]
    weights_sha256: Sha256
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (tuples as lists)."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["classes"] = list(self.classes)
        return data


_SPEC_ADAPTER = TypeAdapter(ModelSpec)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_value(value: Any, what: str) -> Any:
    """``value`` as it will read back from JSON; a clear error if it cannot be stored."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what} must be JSON-serialisable (finite numbers): {exc}") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _check_state(state: Mapping[str, Any], reference: nn.Module, where: str) -> None:
    """Raise if ``state`` does not fit ``reference`` key for key and shape for shape."""
    expected = reference.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        raise ModelError(f"{where}: weights do not match the architecture ({'; '.join(parts)})")
    for key, tensor in expected.items():
        got = state[key]
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise ModelError(
                f"{where}: weight {key!r} has shape {shape}, the architecture needs "
                f"{tuple(tensor.shape)}"
            )


def save(
    model: nn.Module,
    folder: str | os.PathLike[str],
    *,
    architecture: str,
    arguments: Mapping[str, Any],
    input_shape: Sequence[int],
    classes: Sequence[str],
    input_scaling: Mapping[str, float],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` as an artifact at ``folder`` (replacing an artifact already there).

    The description is checked against the model first: ``build(architecture, ...)`` must
    produce the same weight names and shapes, so an artifact that could not load is never
    written. Returns the folder.
    """
    folder = Path(folder)
    arguments = _json_value(dict(arguments), "arguments")
    spec_fields: dict[str, Any] = {
        "architecture": architecture,
        "arguments": arguments,
        "input_shape": [int(d) for d in input_shape],
        "classes": [str(c) for c in classes],
        "input_scaling": _json_value(
            {str(k): float(v) for k, v in input_scaling.items()}, "input_scaling"
        ),
        "extra": _json_value(dict(extra or {}), "extra"),
        "format_version": FORMAT_VERSION,
    }
    reference = build(
        architecture,
        input_shape=tuple(spec_fields["input_shape"]),
        num_classes=len(spec_fields["classes"]),
        **arguments,
    )
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    _check_state(state, reference, f"cannot save to {folder}")
    if folder.exists() and not (folder.is_dir() and set(os.listdir(folder)) <= _ARTIFACT_FILES):
        raise ModelError(
            f"refusing to replace {folder}: it exists and is not a model artifact folder"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        weights = staging / WEIGHTS_FILE
        with weights.open("wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        spec_fields["weights_sha256"] = _sha256(weights)
        spec = _SPEC_ADAPTER.validate_python(spec_fields)
        _write_json(staging / SPEC_FILE, spec.to_dict())
        _swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _swap_in(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; an old artifact is moved aside first, then removed."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.old")
        os.rename(folder, old)
    os.rename(staging, folder)
    _fsync_dir(folder.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_spec(folder: str | os.PathLike[str]) -> ModelSpec:
    """The validated ``model.json`` of ``folder``; :class:`ModelError` says what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: model artifact folder not found")
    path = folder / SPEC_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: missing (not a model artifact folder?)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read the file ({exc})") from exc
    try:
        spec = _SPEC_ADAPTER.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ModelError(f"{path}: invalid JSON ({first['msg']})") from exc
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        unknown = first["type"] in ("extra_forbidden", "unexpected_keyword_argument")
        what = "unknown key" if unknown else first["msg"]
        raise ModelError(f"{path}: field {where!r}: {what}") from exc
    if spec.format_version != FORMAT_VERSION:
        raise ModelError(
            f"{path}: format_version {spec.format_version} is not supported "
            f"(this Bastion reads version {FORMAT_VERSION})"
        )
    return spec


def load(folder: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the network of the artifact at ``folder``, in eval mode.

    Checks, in order: ``model.json`` is valid; ``weights.pt`` exists and its sha256 matches;
    it unpickles with ``weights_only=True``; its names and shapes fit the architecture.
    """
    folder = Path(folder)
    spec = read_spec(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{weights}: missing (the artifact has model.json but no weights)")
    digest = _sha256(weights)
    if digest != spec.weights_sha256:
        raise ModelError(
            f"{weights}: sha256 {digest[:12]}… does not match {SPEC_FILE} "
            f"({spec.weights_sha256[:12]}…); the file is truncated, corrupted or replaced"
        )
    try:
        state = torch.load(weights, map_location=map_location, weights_only=True)
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as exc:
        raise ModelError(f"{weights}: cannot read the weights ({exc})") from exc
    if not isinstance(state, dict):
        raise ModelError(f"{weights}: expected a state_dict, found {type(state).__name__}")
    try:
        model = build(
            spec.architecture,
            input_shape=spec.input_shape,
            num_classes=spec.num_classes,
            **spec.arguments,
        )
    except ModelError as exc:
        raise ModelError(f"{folder / SPEC_FILE}: {exc}") from exc
    _check_state(state, model, str(weights))
    model.load_state_dict(state, strict=True)
    model.to(map_location)
    return model.eval()


def update_extra(folder: str | os.PathLike[str], **values: Any) -> ModelSpec:
    """Merge ``values`` into the artifact's ``extra`` and rewrite ``model.json`` atomically."""
    folder = Path(folder)
    spec = read_spec(folder)
    extra = {**spec.extra, **_json_value(values, "extra values")}
    updated = _SPEC_ADAPTER.validate_python({**spec.to_dict(), "extra": extra})
    handle, name = tempfile.mkstemp(prefix=f".{SPEC_FILE}.", suffix=".tmp", dir=folder)
    os.close(handle)
    staging = Path(name)
    try:
        _write_json(staging, updated.to_dict())
        os.replace(staging, folder / SPEC_FILE)
        _fsync_dir(folder)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return updated
