"""Checkpoints: the whole training state in one file per epoch, written atomically.

A checkpoint holds what a resumed run needs to continue *bit for bit*: weights, optimiser,
scheduler, the weight average, every random number generator (torch, CUDA, numpy, Python,
per rank), the metrics so far, the guard's state and the position ``(epoch, step)``. All
other randomness in training is derived from the seed and that position.

Files are written to a temporary name, flushed to disk and renamed, so a run killed while
writing leaves the previous checkpoint intact; loading uses ``torch.load(weights_only=True)``,
so a checkpoint holds plain containers and tensors only and loading one runs no code.

Layout, inside the run's folder::

    checkpoints/epoch-0000.pt      the state before training (the first rollback target)
    checkpoints/epoch-0003.pt      after epoch 3 (the newest ``keep`` are kept)
    checkpoints/interrupted.pt     a Ctrl-C in the middle of an epoch
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from bastion.errors import TrainingError

__all__ = [
    "FORMAT",
    "INTERRUPTED",
    "atomic_write_bytes",
    "checkpoint_dir",
    "epoch_path",
    "find_latest",
    "list_checkpoints",
    "load_checkpoint",
    "prune",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

log = logging.getLogger(__name__)

FORMAT = 1
INTERRUPTED = "interrupted.pt"
_EPOCH_FILE = re.compile(r"^epoch-(\d{4,})\.pt$")


def checkpoint_dir(out_dir: Path) -> Path:
    return out_dir / "checkpoints"


def epoch_path(out_dir: Path, epoch: int) -> Path:
    return checkpoint_dir(out_dir) / f"epoch-{epoch:04d}.pt"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plain containers and tensors) atomically to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save({"format": FORMAT, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TrainingError(f"cannot write checkpoint {path}: {exc}") from exc
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The state saved in ``path``; :class:`TrainingError` if it is unreadable."""
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise TrainingError(f"checkpoint not found: {path}") from exc
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/...
        raise TrainingError(f"checkpoint {path} is unreadable or truncated: {exc}") from exc
    found = state.get("format") if isinstance(state, dict) else None
    if found != FORMAT:
        raise TrainingError(
            f"checkpoint {path} has format {found!r}; this Bastion reads format {FORMAT}"
        )
    return state


def list_checkpoints(out_dir: Path) -> list[Path]:
    """Every checkpoint file in the run's folder (epoch files and an interrupted one)."""
    folder = checkpoint_dir(out_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _EPOCH_FILE.match(p.name) or p.name == INTERRUPTED)


def find_latest(out_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The most advanced readable checkpoint, by ``(epoch, step)``; unreadable files are
    skipped with a warning (a kill while writing leaves the previous one valid)."""
    best: tuple[tuple[int, int], Path, dict[str, Any]] | None = None
    for path in list_checkpoints(out_dir):
        try:
            state = load_checkpoint(path)
        except TrainingError as exc:
            log.warning("skipping %s", exc)
            continue
        position = (int(state["epoch"]), int(state["step"]))
        if best is None or position > best[0]:
            best = (position, path, state)
    return None if best is None else (best[1], best[2])


def prune(out_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` epoch checkpoints and any interrupted one (called
    after a newer epoch checkpoint is safely on disk)."""
    folder = checkpoint_dir(out_dir)
    epochs = sorted(p for p in folder.iterdir() if _EPOCH_FILE.match(p.name))
    for old in epochs[:-keep]:
        old.unlink(missing_ok=True)
    (folder / INTERRUPTED).unlink(missing_ok=True)


def rng_state() -> dict[str, Any]:
    """This process's generators as plain data."""
    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, cached = np_state
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": int(py_version), "state": list(py_state), "gauss": py_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
