"""The two shapes every other part consumes: a labelled split and a dataset of three splits.

They are frozen so that a dataset handed to training, evaluation and the registry cannot drift
between them; the fingerprint then names exactly what was used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bastion.config import Channel
from bastion.errors import DataError

__all__ = ["Dataset", "Split"]


@dataclass(frozen=True, eq=False)
class Split:
    """Inputs ``x``, integer labels ``y`` and stable sample ``ids`` (row index in the source).

    Images are float32 ``(N, C, H, W)`` in [0, 1]; tabular rows float32 ``(N, F)``; text an
    object array of ``str``. ``y`` and ``ids`` are coerced to int64.
    """

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        y = np.asarray(self.y)
        ids = np.asarray(self.ids)
        if y.ndim != 1 or ids.ndim != 1:
            raise DataError(
                f"split labels and ids must be 1-D; got y of shape {y.shape} "
                f"and ids of shape {ids.shape}"
            )
        if not (len(self.x) == len(y) == len(ids)):
            raise DataError(
                f"split arrays differ in length: x has {len(self.x)} rows, y {len(y)}, "
                f"ids {len(ids)}"
            )
        object.__setattr__(self, "y", y.astype(np.int64, copy=False))
        object.__setattr__(self, "ids", ids.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return len(self.y)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x float32, y int64)`` as CPU tensors (sharing memory where the dtype allows)."""
        if self.x.dtype == object or self.x.dtype.kind in "US":
            raise DataError("a text split has no tensor form; use split.x (strings) directly")
        x = torch.from_numpy(np.ascontiguousarray(self.x, dtype=np.float32))
        y = torch.from_numpy(np.ascontiguousarray(self.y))
        return x, y

    def subset(self, index: np.ndarray | slice) -> Split:
        """The rows at ``index`` (a slice, integer indices or a boolean mask); ids are kept."""
        return Split(self.x[index], self.y[index], self.ids[index])


@dataclass(frozen=True, eq=False, kw_only=True)
class Dataset:
    """A named dataset split three ways, with what is needed to reproduce and to serve it.

    ``input_shape`` is per sample (``(1, 8, 8)`` for digits); ``input_scaling`` says how raw
    values map to the model's range (``{"scale": 16.0}``: raw / 16 -> [0, 1]); ``fingerprint``
    is the sha256 of the source content (independent of the split, which ``meta["split"]``
    records); ``modality`` is ``"image"``, ``"text"`` or ``"tabular"``.
    """

    name: str
    modality: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]
    input_shape: tuple[int, ...]
    fingerprint: str
    source: str
    input_scaling: dict[str, float] = field(default_factory=lambda: {"scale": 1.0})
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            modality = Channel(self.modality)
        except ValueError as exc:
            allowed = ", ".join(c.value for c in Channel)
            raise DataError(
                f"dataset {self.name!r}: modality must be one of {allowed}; got {self.modality!r}"
            ) from exc
        object.__setattr__(self, "modality", modality)
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> dict[str, Split]:
        """``{"train": ..., "val": ..., "test": ...}`` in that order."""
        return {"train": self.train, "val": self.val, "test": self.test}
