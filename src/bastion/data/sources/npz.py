"""A user's own arrays in one ``.npz`` file: ``x`` and ``y``, optionally ``classes``.

The array rank decides the modality: ``(N, F)`` tabular, ``(N, H, W)`` or ``(N, C, H, W)``
images, ``(N,)`` strings text. Files are opened with ``allow_pickle=False``: a data file
must never be able to run code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from bastion.config import Channel, DataConfig, Section
from bastion.data.fingerprint import fingerprint_arrays
from bastion.data.raw import RawData
from bastion.data.registry import register_loader
from bastion.data.sources._common import encode_labels, parse_options, require_path
from bastion.errors import DataError

__all__ = ["load"]


class NpzOptions(Section):
    """``scale``: raw / scale -> model range (default 255 for uint8 images, else 1);
    ``modality``: force ``image`` or ``tabular`` for numeric arrays."""

    scale: float | None = None
    modality: Channel | None = None


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        # Opened here, not by np.load, so the handle is closed even when parsing fails.
        with path.open("rb") as handle:
            archive = np.load(handle, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: holds a single .npy array, not an .npz archive")
            with archive:
                return {key: archive[key] for key in archive.files}
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except ValueError as exc:  # object arrays (pickles) and malformed headers
        raise DataError(f"{path}: cannot read the arrays ({exc})") from exc
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"{path}: not a valid .npz file ({exc})") from exc


@register_loader("npz")
def load(config: DataConfig) -> RawData:
    """Arrays ``x`` and ``y`` (and optional ``classes``) from ``config.path``."""
    options = parse_options(NpzOptions, config)
    path = require_path(config, "an .npz file with arrays x and y")
    arrays = _read(path)
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing array {missing[0]!r} (found {sorted(arrays) or 'none'})")
    raw_x, raw_y = arrays["x"], arrays["y"]
    if len(raw_x) != len(raw_y):
        raise DataError(f"{path}: x has {len(raw_x)} rows but y has {len(raw_y)}")
    classes = arrays["classes"].tolist() if "classes" in arrays else None
    y, names = encode_labels(raw_y, classes, str(path))
    fingerprint = fingerprint_arrays(x=raw_x, y=raw_y, classes=np.asarray(names, dtype=object))
    if raw_x.dtype.kind in "US":
        if raw_x.ndim != 1:
            raise DataError(f"{path}: text x must be one string per row; got shape {raw_x.shape}")
        return RawData(
            x=np.array([str(s) for s in raw_x], dtype=object),
            y=y,
            classes=names,
            modality=Channel.TEXT,
            fingerprint=fingerprint,
            source=str(path),
            meta={"loader": "npz"},
        )
    if raw_x.dtype.kind not in "biuf":
        raise DataError(f"{path}: x must be numeric or strings; got dtype {raw_x.dtype}")
    modality = options.modality or (Channel.TABULAR if raw_x.ndim == 2 else Channel.IMAGE)
    x = raw_x
    if modality is Channel.IMAGE:
        if x.ndim == 3:
            x = x[:, None, :, :]
        if x.ndim != 4:
            raise DataError(
                f"{path}: image x must be (N, H, W) or (N, C, H, W); got shape {raw_x.shape}"
            )
    elif x.ndim != 2:
        raise DataError(f"{path}: tabular x must be (N, F); got shape {raw_x.shape}")
    scale = options.scale
    if scale is None:
        scale = 255.0 if modality is Channel.IMAGE and raw_x.dtype == np.uint8 else 1.0
    if scale <= 0:
        raise DataError(f"{path}: option 'scale' must be positive; got {scale}")
    return RawData(
        x=(x.astype(np.float64) / scale).astype(np.float32),
        y=y,
        classes=names,
        modality=modality,
        fingerprint=fingerprint,
        source=str(path),
        input_scaling={"scale": float(scale)},
        meta={"loader": "npz"},
    )
