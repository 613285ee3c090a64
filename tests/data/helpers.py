"""Writers for small, deliberately broken data files used by the loader tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray, *, type_code: int = 0x08) -> bytes:
    """``array`` (uint8) in IDX layout: magic, big-endian dimensions, values."""
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gz(path: Path, data: bytes) -> Path:
    with gzip.open(path, "wb") as handle:
        handle.write(data)
    return path


def write_mnist_pair(
    folder: Path, part: str, images: np.ndarray, labels: np.ndarray
) -> tuple[Path, Path]:
    """``{part}-images-idx3-ubyte.gz`` and ``{part}-labels-idx1-ubyte.gz`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return (
        write_gz(folder / f"{part}-images-idx3-ubyte.gz", idx_bytes(images)),
        write_gz(folder / f"{part}-labels-idx1-ubyte.gz", idx_bytes(labels)),
    )


def tiny_mnist(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random 28x28 uint8 images with balanced labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels
