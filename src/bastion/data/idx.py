"""Reading LeCun's IDX format (MNIST's files), gzip-compressed, with every field checked.

The format is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order. Parsing it here, rather than
through a dataset library, lets each way a file can be broken get its own message.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from bastion.errors import DataError

__all__ = ["read_idx_gz"]

_TYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def _decompress(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except gzip.BadGzipFile as exc:
        # Raised both for a wrong header and for a failed CRC or length check at the end.
        if str(exc).startswith("Not a gzipped file"):
            raise DataError(f"{path}: not a gzip file ({exc})") from exc
        raise DataError(f"{path}: corrupt gzip data ({exc})") from exc
    except EOFError as exc:
        raise DataError(f"{path}: truncated gzip file (the compressed stream ends early)") from exc
    except zlib.error as exc:
        raise DataError(f"{path}: corrupt gzip data ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc})") from exc


def read_idx_gz(path: Path, *, magic: int) -> np.ndarray:
    """The array in the gzip-compressed IDX file ``path``; its magic number must be ``magic``.

    ``magic`` fixes both the value type and the number of dimensions (``0x00000803``:
    unsigned bytes, 3 dimensions). The values are returned in native byte order.
    """
    data = _decompress(path)
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(
            f"{path}: wrong magic number 0x{found:08X} (expected 0x{magic:08X}: "
            f"{_describe(magic)}); is this the right file?"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header (needs {header} bytes, has {len(data)})")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_TYPES[data[2]])
    expected = math.prod(dims) * dtype.itemsize
    payload = len(data) - header
    if payload != expected:
        problem = "truncated" if payload < expected else "has trailing bytes"
        raise DataError(
            f"{path}: {problem}: dimensions {dims} need {expected} bytes of values, found {payload}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def _describe(magic: int) -> str:
    code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    kind = {
        0x08: "unsigned bytes",
        0x09: "signed bytes",
        0x0B: "int16",
        0x0C: "int32",
        0x0D: "float32",
        0x0E: "float64",
    }[code]
    return f"{kind} with {ndim} dimension{'s' if ndim != 1 else ''}"
