"""A content fingerprint that changes exactly when the data changes.

It hashes the decoded arrays (dtype, shape, bytes) rather than file bytes, so the same data
re-compressed or re-saved (``np.savez`` stamps the time into its zip) keeps its fingerprint,
while any changed pixel, label or class name changes it.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["fingerprint_arrays"]


def _update_str(digest: hashlib._Hash, text: str) -> None:
    data = text.encode("utf-8")
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)


def fingerprint_arrays(**arrays: np.ndarray) -> str:
    """sha256 hex over named arrays, in name order. Object/str arrays hash their strings."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.asarray(arrays[name])
        _update_str(digest, name)
        _update_str(digest, repr(array.shape))
        if array.dtype == object or array.dtype.kind in "US":
            _update_str(digest, "str")
            for item in array.reshape(-1):
                _update_str(digest, str(item))
        else:
            # A canonical little-endian dtype so the same values hash alike on any machine.
            canonical = (
                array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
            )
            _update_str(digest, canonical.str)
            digest.update(np.ascontiguousarray(array, dtype=canonical).tobytes())
    return digest.hexdigest()
