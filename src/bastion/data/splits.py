"""Deterministic, stratified train/validation/test splits.

Method (one rule for every loader): under ``seed``, each class's rows are shuffled and the
``j``-th of ``n_c`` rows of class ``c`` gets the position ``(j + 0.5) / n_c``; sorting all
rows by position (ties broken at random) interleaves the classes evenly. The test set is the
first ``round(N * test_fraction)`` rows of that order, validation the next
``round(N * val_fraction)``, training the rest. Hence

* every split holds each class within one row of its share of the whole (stratified),
* the splits are disjoint and cover every row, and the same seed gives the same splits,
* the test set does not move when only ``val_fraction`` changes,
* ``limit`` keeps the first ``limit`` rows of the order: a stratified subsample, split alike.

Both fractions are of the whole dataset, so validation is carved from the non-test rows:
MNIST's 10k test file with the defaults (test 0.2, val 0.1) gives 2000 test rows and 8000
others, of which 1000 are validation and 7000 training.

With a predefined test set (``RawData.test_mask``: MNIST when its training files are
present) the test split is exactly those rows and ``val_fraction`` is taken of the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bastion.data.dataset import Split
from bastion.data.raw import RawData
from bastion.errors import DataError

__all__ = ["SplitPlan", "make_splits", "split_indices", "stratified_order"]


@dataclass(frozen=True, kw_only=True)
class SplitPlan:
    """How to split: the data config's fields, named alike."""

    seed: int
    val_fraction: float
    test_fraction: float
    limit: int | None = None


def _round(value: float) -> int:
    return math.floor(value + 0.5)


def stratified_order(y: np.ndarray, seed: int) -> np.ndarray:
    """Row indices in an order that interleaves the classes evenly (see module docstring)."""
    rng = np.random.default_rng(seed)
    position = np.empty(len(y), dtype=np.float64)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        shuffled = rows[rng.permutation(len(rows))]
        position[shuffled] = (np.arange(len(rows)) + 0.5) / len(rows)
    tie_break = rng.random(len(y))
    return np.lexsort((tie_break, position))


def split_indices(
    y: np.ndarray, plan: SplitPlan, *, test_mask: np.ndarray | None = None, source: str = ""
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, val, test)`` row indices of ``y`` under ``plan``."""
    order = stratified_order(y, plan.seed)
    if plan.limit is not None:
        order = order[: plan.limit]
    if test_mask is not None:
        test = order[test_mask[order]]
        pool = order[~test_mask[order]]
    else:
        n_test = max(1, _round(len(order) * plan.test_fraction))
        test, pool = order[:n_test], order[n_test:]
    # Fractions are of the whole; with a predefined test set, of the rows outside it.
    n_val = _round((len(pool) if test_mask is not None else len(order)) * plan.val_fraction)
    val, train = pool[:n_val], pool[n_val:]
    for name, part in (("train", train), ("test", test)):
        if len(part) == 0:
            where = f"{source}: " if source else ""
            raise DataError(
                f"{where}the {name} split is empty ({len(order)} rows with "
                f"test_fraction={plan.test_fraction}, val_fraction={plan.val_fraction}, "
                f"limit={plan.limit}); use more rows or smaller fractions"
            )
    return train, val, test


def make_splits(raw: RawData, plan: SplitPlan) -> tuple[Split, Split, Split]:
    """The three :class:`Split` objects of ``raw``; ids are row indices in the source."""
    train, val, test = split_indices(raw.y, plan, test_mask=raw.test_mask, source=raw.source)

    def take(rows: np.ndarray) -> Split:
        return Split(raw.x[rows], raw.y[rows], rows.astype(np.int64))

    return take(train), take(val), take(test)
