"""Datasets behind one interface: loaders by name, deterministic stratified splits, and a
content fingerprint, so that every stage (training, evaluation, registry) can say exactly
which data it saw.

    >>> from bastion.config import DataConfig
    >>> from bastion.data import load_dataset
    >>> digits = load_dataset(DataConfig(name="digits", seed=0))
    >>> digits.input_shape, len(digits.classes)
    ((1, 8, 8), 10)

New sources register with :func:`register_loader` and return :class:`RawData`; the shared
checks and the split then apply to them unchanged.
"""

from __future__ import annotations

from bastion.data import sms_spam as _sms_spam  # noqa: F401  (registers the text loader)
from bastion.data import sources as _sources  # noqa: F401  (registers the built-in loaders)
from bastion.data.dataset import Dataset, Split
from bastion.data.fingerprint import fingerprint_arrays
from bastion.data.raw import RawData
from bastion.data.registry import Loader, load_dataset, loaders, register_loader
from bastion.data.splits import SplitPlan, split_indices, stratified_order

__all__ = [
    "Dataset",
    "Loader",
    "RawData",
    "Split",
    "SplitPlan",
    "fingerprint_arrays",
    "load_dataset",
    "loaders",
    "register_loader",
    "split_indices",
    "stratified_order",
]
