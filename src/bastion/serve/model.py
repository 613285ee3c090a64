"""What the server serves: one model version (or an ensemble) plus what it needs to start.

A served version comes either from the registry (``NAME:VERSION`` / ``NAME@STAGE``, resolved
by the CLI) or from a plain artifact folder, for use before or without a registry. An
*ensemble* artifact is a folder whose ``members/`` subfolders are model artifacts; the members
must agree on input shape, classes and input scaling.

The detectors need clean data at start-up (training rows to fit Mahalanobis, validation rows
to set thresholds). The server does not load datasets itself — data sits beside it, not below
it, in the design — so callers pass a :class:`CalibrationData`, which can also be written to
an ``.npz`` file for server worker processes to read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from bastion import models
from bastion.errors import ModelError, ServeError

__all__ = ["CalibrationData", "ServedModel", "load_model_dir"]

MEMBERS_DIR = "members"


@dataclass(frozen=True)
class ServedModel:
    """A loaded model version and what the API reports about it."""

    name: str
    version: str
    members: list[nn.Module]
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    input_scaling: dict[str, float]
    temperature: float = 1.0
    lineage: dict[str, Any] | None = None
    threat_model: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    source: str = ""

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1


def _temperature(extra: Mapping[str, Any], where: str) -> float:
    value = extra.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ModelError(f"{where}: extra.temperature must be a number > 0; got {value!r}")
    return float(value)


def load_model_dir(
    folder: str | os.PathLike[str], *, name: str | None = None, version: str | None = None
) -> ServedModel:
    """Load an artifact folder (or an ensemble folder with ``members/``) for serving."""
    root = Path(folder)
    if not root.is_dir():
        raise ModelError(f"{root}: model folder not found")
    if (root / models.SPEC_FILE).is_file():
        paths = [root]
    elif (root / MEMBERS_DIR).is_dir():
        paths = sorted(p for p in (root / MEMBERS_DIR).iterdir() if p.is_dir())
        if not paths:
            raise ModelError(f"{root / MEMBERS_DIR}: an ensemble folder with no members")
    else:
        raise ModelError(
            f"{root}: not a model artifact (no {models.SPEC_FILE}) nor an ensemble "
            f"(no {MEMBERS_DIR}/ folder)"
        )
    specs = [models.read_spec(p) for p in paths]
    first = specs[0]
    for path, spec in zip(paths[1:], specs[1:], strict=True):
        for attr in ("input_shape", "classes", "input_scaling"):
            if getattr(spec, attr) != getattr(first, attr):
                raise ModelError(
                    f"{path}: ensemble member disagrees with {paths[0].name} on {attr} "
                    f"({getattr(spec, attr)!r} vs {getattr(first, attr)!r})"
                )
    members = [models.load(p) for p in paths]
    return ServedModel(
        name=name or root.name,
        version=version or f"{root.name}@dir",
        members=members,
        input_shape=tuple(first.input_shape),
        classes=tuple(first.classes),
        input_scaling=dict(first.input_scaling),
        temperature=_temperature(first.extra, str(paths[0] / models.SPEC_FILE)),
        source=str(root),
    )


@dataclass(frozen=True)
class CalibrationData:
    """Clean data for start-up fitting: training rows (with labels) and validation rows.

    Arrays are in the model's [0, 1] input space, shaped (N, *input_shape).
    """

    x_train: NDArray[np.float32]
    y_train: NDArray[np.int64]
    x_val: NDArray[np.float32]
    meta: dict[str, Any] = field(default_factory=dict)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.from_numpy(np.ascontiguousarray(self.x_train, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(self.y_train, dtype=np.int64)),
            torch.from_numpy(np.ascontiguousarray(self.x_val, dtype=np.float32)),
        )

    def check(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        for label, array in (("training", self.x_train), ("validation", self.x_val)):
            if tuple(array.shape[1:]) != input_shape:
                raise ServeError(
                    f"calibration {label} data has sample shape {tuple(array.shape[1:])}; "
                    f"the model takes {input_shape}"
                )
            if array.shape[0] == 0:
                raise ServeError(f"calibration {label} data is empty")
        if self.y_train.shape[0] != self.x_train.shape[0]:
            raise ServeError("calibration training labels and inputs differ in length")
        if self.y_train.size and (self.y_train.min() < 0 or self.y_train.max() >= num_classes):
            raise ServeError(f"calibration labels must be in [0, {num_classes})")

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        np.savez(path, x_train=self.x_train, y_train=self.y_train, x_val=self.x_val)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CalibrationData:
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    x_train=data["x_train"].astype(np.float32),
                    y_train=data["y_train"].astype(np.int64),
                    x_val=data["x_val"].astype(np.float32),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ServeError(f"{path}: cannot read calibration data ({exc})") from exc
