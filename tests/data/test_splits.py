"""The stratified split: deterministic, disjoint, covering, stratified, stable test set."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from bastion.config import DataConfig
from bastion.data import SplitPlan, load_dataset, split_indices
from bastion.errors import DataError


def _plan(**overrides: object) -> SplitPlan:
    values: dict[str, object] = {"seed": 0, "val_fraction": 0.1, "test_fraction": 0.2}
    values.update(overrides)
    return SplitPlan(**values)  # type: ignore[arg-type]


def _ids(config: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dataset = load_dataset(config)
    return dataset.train.ids, dataset.val.ids, dataset.test.ids


def test_same_seed_gives_same_splits() -> None:
    first = _ids(DataConfig(name="digits", seed=3))
    second = _ids(DataConfig(name="digits", seed=3))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_other_seed_gives_other_test_set() -> None:
    _, _, test_a = _ids(DataConfig(name="digits", seed=0))
    _, _, test_b = _ids(DataConfig(name="digits", seed=1))
    assert set(test_a.tolist()) != set(test_b.tolist())


def test_splits_are_disjoint_and_cover_every_row(digits) -> None:
    ids = [digits.train.ids, digits.val.ids, digits.test.ids]
    joined = np.concatenate(ids)
    assert len(np.unique(joined)) == len(joined)
    assert set(joined.tolist()) == set(range(digits.meta["rows"]))


def test_split_rows_match_their_source_rows(digits) -> None:
    source = load_digits()
    for split in digits.splits().values():
        np.testing.assert_array_equal(split.y, source.target[split.ids])
        np.testing.assert_allclose(split.x[:, 0], source.images[split.ids] / 16.0, rtol=1e-6)


def test_sizes_follow_the_fractions_of_the_whole(digits) -> None:
    rows = digits.meta["rows"]
    assert len(digits.test) == round(rows * 0.2)
    assert len(digits.val) == round(rows * 0.1)
    assert len(digits.train) == rows - len(digits.test) - len(digits.val)


def test_every_split_is_stratified(digits) -> None:
    rows = digits.meta["rows"]
    everything = np.concatenate([s.y for s in digits.splits().values()])
    share = np.bincount(everything, minlength=10) / rows
    for split in digits.splits().values():
        counts = np.bincount(split.y, minlength=10)
        # Each class is within one row (plus one for tie-breaking) of its exact share.
        assert np.all(np.abs(counts - share * len(split)) <= 2), counts


def test_test_set_does_not_move_when_val_fraction_changes() -> None:
    _, _, test_a = _ids(DataConfig(name="digits", val_fraction=0.1))
    _, _, test_b = _ids(DataConfig(name="digits", val_fraction=0.3))
    np.testing.assert_array_equal(test_a, test_b)


def test_limit_keeps_a_stratified_subsample() -> None:
    dataset = load_dataset(DataConfig(name="digits", limit=200))
    sizes = [len(s) for s in dataset.splits().values()]
    assert sum(sizes) == 200
    labels = np.concatenate([s.y for s in dataset.splits().values()])
    counts = np.bincount(labels, minlength=10)
    full = np.bincount(load_digits().target, minlength=10)
    # A prefix of the interleaved order holds each class within one row of its share.
    assert np.all(np.abs(counts - full * 200 / full.sum()) <= 1), counts
    assert dataset.meta["split"]["limit"] == 200


def test_zero_val_fraction_gives_an_empty_validation_split() -> None:
    dataset = load_dataset(DataConfig(name="digits", val_fraction=0.0))
    assert len(dataset.val) == 0
    assert dataset.val.x.shape == (0, 1, 8, 8)


def test_too_few_rows_for_a_training_split_is_a_data_error() -> None:
    y = np.array([0, 1, 0, 1])
    with pytest.raises(DataError, match=r"train split is empty"):
        split_indices(y, _plan(val_fraction=0.5, test_fraction=0.5), source="tiny.npz")


def test_predefined_test_rows_are_the_test_split() -> None:
    y = np.tile(np.arange(4), 50)
    mask = np.zeros(len(y), dtype=bool)
    mask[150:] = True
    train, val, test = split_indices(y, _plan(val_fraction=0.2), test_mask=mask)
    assert sorted(test.tolist()) == list(range(150, 200))
    assert len(val) == 30  # 0.2 of the 150 rows outside the test set
    assert set(train.tolist()) | set(val.tolist()) == set(range(150))


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=40), min_size=2, max_size=6),
    seed=st.integers(min_value=0, max_value=2**31),
    test_fraction=st.floats(min_value=0.1, max_value=0.5),
    val_fraction=st.floats(min_value=0.0, max_value=0.3),
)
def test_partition_properties_hold_for_any_labels(
    counts: list[int], seed: int, test_fraction: float, val_fraction: float
) -> None:
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(y)
    plan = _plan(seed=seed, test_fraction=test_fraction, val_fraction=val_fraction)
    try:
        parts = split_indices(y, plan)
    except DataError:
        n_test = max(1, math.floor(len(y) * test_fraction + 0.5))
        assert len(y) - n_test - math.floor(len(y) * val_fraction + 0.5) <= 0
        return
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(y)))
    again = split_indices(y, plan)
    for a, b in zip(parts, again, strict=True):
        np.testing.assert_array_equal(a, b)
    for part in parts:
        got = np.bincount(y[part], minlength=len(counts))
        expected = np.asarray(counts) * len(part) / len(y)
        assert np.all(np.abs(got - expected) <= 2), (got, expected)
