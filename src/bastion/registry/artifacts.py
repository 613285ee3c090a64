"""The content-addressed artifact store: a registered model is a copy nobody can change.

A model version points at ``<store>/sha256/<digest>/``, a copy of the artifact folder named
by the hash of its content. The copy is hashed after it is made (so a file changing while
it is copied cannot slip through under the old hash), then renamed into place in one step;
copies of equal content are shared, and a copy left behind by a killed process is only an
unreferenced folder, never a half-registered version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from bastion.errors import IntegrityError, ModelError, RegistryError

__all__ = ["store_artifact", "tree_sha256", "verify_artifact"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(path: Path) -> str:
    """sha256 over every file's relative path, size and content hash, in sorted order.

    A single file hashes as a folder holding that one file, so the digest does not depend
    on whether the artifact was given as a file or as its folder's only member.
    """
    if path.is_file():
        files = [(path.name, path)]
    elif path.is_dir():
        files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    else:
        raise ModelError(f"model artifact not found: {path}")
    if not files:
        raise ModelError(f"model artifact folder is empty: {path}")
    digest = hashlib.sha256()
    for name, file in files:
        digest.update(f"{name}\0{file.stat().st_size}\0{_file_sha256(file)}\n".encode())
    return digest.hexdigest()


def store_artifact(source: Path, store: Path) -> tuple[Path, str]:
    """Copy ``source`` (a file or folder) into ``store``; return (stored path, sha256)."""
    source = Path(source)
    if not source.exists():
        raise ModelError(f"model artifact not found: {source}")
    root = store / "sha256"
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
        try:
            copy = staging / "artifact"
            if source.is_dir():
                shutil.copytree(source, copy)
            else:
                copy.mkdir()
                shutil.copy2(source, copy / source.name)
            digest = tree_sha256(copy)
            final = root / digest
            if final.exists() and tree_sha256(final) != digest:
                # An earlier copy under this name was altered on disk: keep it for
                # inspection, out of the way, and store the good content in its place.
                quarantine = root / f".corrupt-{digest}-{uuid.uuid4().hex[:8]}"
                os.replace(final, quarantine)
                logger.warning(
                    "stored artifact %s did not match its hash; moved to %s", final, quarantine
                )
            if not final.exists():
                try:
                    os.replace(copy, final)
                except OSError:
                    # Another writer stored the same content first; theirs is identical.
                    if not final.is_dir():
                        raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise RegistryError(f"cannot copy artifact {source} into {store}: {exc}") from exc
    return final, digest


def verify_artifact(path: Path, sha256: str) -> None:
    """Raise IntegrityError unless the stored artifact still hashes to ``sha256``."""
    if not Path(path).exists():
        raise IntegrityError(f"stored artifact is missing: {path}")
    actual = tree_sha256(Path(path))
    if actual != sha256:
        raise IntegrityError(
            f"stored artifact {path} was modified: sha256 {actual}, registered {sha256}"
        )
