"""What a loader hands back before splitting, and the checks every loader's output passes.

Loaders only read and decode; the shared checks here (lengths, label range, finite values,
image range) and the split in :mod:`bastion.data.splits` are the same for every source, so a
new loader cannot forget them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bastion.config import Channel
from bastion.errors import DataError

__all__ = ["RawData"]


@dataclass(frozen=True, eq=False, kw_only=True)
class RawData:
    """A decoded source: every row, labels in ``range(len(classes))``, inputs in model range.

    ``test_mask`` marks rows of a predefined test set (e.g. MNIST's official t10k files when the
    training files are present); ``None`` means the test set is drawn by the stratified split.
    """

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    modality: Channel
    fingerprint: str
    source: str
    input_scaling: dict[str, float] = field(default_factory=lambda: {"scale": 1.0})
    meta: dict[str, Any] = field(default_factory=dict)
    test_mask: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    def check(self) -> None:
        """Raise :class:`DataError` naming the source if the decoded data is inconsistent."""
        where = self.source
        n = len(self.x)
        if n == 0:
            raise DataError(f"{where}: the data has no rows")
        if self.y.shape != (n,):
            raise DataError(
                f"{where}: {n} inputs but labels of shape {self.y.shape} (expected ({n},))"
            )
        if self.y.dtype != np.int64:
            raise DataError(f"{where}: labels must be int64 after decoding; got {self.y.dtype}")
        if len(self.classes) < 2:
            raise DataError(f"{where}: at least two classes are needed; got {self.classes!r}")
        if len(set(self.classes)) != len(self.classes):
            raise DataError(f"{where}: class names repeat: {self.classes!r}")
        low, high = int(self.y.min()), int(self.y.max())
        if low < 0 or high >= len(self.classes):
            raise DataError(
                f"{where}: labels must lie in 0..{len(self.classes) - 1} "
                f"({len(self.classes)} classes); found {low}..{high}"
            )
        if self.test_mask is not None and (
            self.test_mask.shape != (n,) or self.test_mask.dtype != np.bool_
        ):
            raise DataError(f"{where}: test_mask must be a boolean array of shape ({n},)")
        if self.modality is Channel.TEXT:
            self._check_text(where)
        else:
            self._check_numeric(where)

    def _check_text(self, where: str) -> None:
        if self.x.ndim != 1 or self.x.dtype != object:
            raise DataError(f"{where}: text inputs must be a 1-D object array of str")
        bad = [i for i, item in enumerate(self.x) if not isinstance(item, str)]
        if bad:
            raise DataError(f"{where}: row {bad[0]} is not a string ({len(bad)} such rows)")

    def _check_numeric(self, where: str) -> None:
        if self.x.dtype != np.float32:
            raise DataError(f"{where}: inputs must be float32 after decoding; got {self.x.dtype}")
        expected_ndim = 4 if self.modality is Channel.IMAGE else 2
        if self.x.ndim != expected_ndim:
            layout = "(N, C, H, W)" if self.modality is Channel.IMAGE else "(N, F)"
            raise DataError(
                f"{where}: {self.modality.value} inputs must have shape {layout}; "
                f"got {self.x.shape}"
            )
        finite = np.isfinite(self.x)
        if not finite.all():
            row = int(np.argwhere(~finite)[0][0])
            count = int((~finite.reshape(n := len(self.x), -1)).any(axis=1).sum())
            raise DataError(
                f"{where}: inputs contain NaN or infinite values (first at row {row}; "
                f"{count} of {n} rows affected)"
            )
        if self.modality is Channel.IMAGE:
            low, high = float(self.x.min()), float(self.x.max())
            if low < 0.0 or high > 1.0:
                raise DataError(
                    f"{where}: image values must lie in [0, 1] after scaling by "
                    f"{self.input_scaling}; found [{low:g}, {high:g}] "
                    "(set the loader's 'scale' option, e.g. 255 for 8-bit pixels)"
                )
