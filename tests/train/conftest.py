"""Fixtures of the training tests: a digits subset small enough for many short runs."""

from __future__ import annotations

import dataclasses

import pytest

from bastion.data import Dataset


@pytest.fixture(scope="session")
def digits_small(digits: Dataset) -> Dataset:
    """The first 256 training rows of ``digits`` (4 batches of 64); val and test unchanged."""
    return dataclasses.replace(digits, train=digits.train.subset(slice(0, 256)))
