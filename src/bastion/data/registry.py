"""Loaders by name, and the one path from a data config to a checked, split dataset.

A loader only reads and decodes its source into :class:`~bastion.data.raw.RawData`;
:func:`load_dataset` then runs the shared checks and the stratified split, so every dataset
(including ones registered later, e.g. the text channel's ``sms_spam``) behaves the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.config import DataConfig
from bastion.data.dataset import Dataset
from bastion.data.raw import RawData
from bastion.data.splits import SplitPlan, make_splits
from bastion.errors import ConfigError

__all__ = ["Loader", "load_dataset", "loaders", "register_loader"]

#: A loader reads ``config.path`` (and ``config.options``) and returns the decoded rows.
Loader = Callable[[DataConfig], RawData]

_LOADERS: dict[str, Loader] = {}


def register_loader(name: str) -> Callable[[Loader], Loader]:
    """Decorator: make ``load_dataset`` call this function for ``DataConfig(name=name)``."""

    def decorator(loader: Loader) -> Loader:
        existing = _LOADERS.get(name)
        if existing is not None and existing.__qualname__ != loader.__qualname__:
            raise ValueError(f"a data loader named {name!r} is already registered")
        _LOADERS[name] = loader
        return loader

    return decorator


def loaders() -> list[str]:
    """The registered loader names, sorted."""
    return sorted(_LOADERS)


def load_dataset(config: DataConfig) -> Dataset:
    """Load, check and split the dataset that ``config`` names (deterministic under its seed).

    Raises :class:`~bastion.errors.DataError` naming the file and the problem for missing or
    corrupt data, and :class:`~bastion.errors.ConfigError` for an unknown loader or option.
    """
    loader = _LOADERS.get(config.name)
    if loader is None:
        raise ConfigError(
            f"unknown dataset loader {config.name!r}; known: {', '.join(loaders())}",
            path="data.name",
        )
    raw = loader(config)
    raw.check()
    plan = SplitPlan(
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        limit=config.limit,
    )
    train, val, test = make_splits(raw, plan)
    split_meta: dict[str, Any] = {
        "seed": config.seed,
        "val_fraction": config.val_fraction,
        "test_fraction": config.test_fraction,
        "limit": config.limit,
        "method": "predefined-test" if raw.test_mask is not None else "stratified-interleave",
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
    }
    return Dataset(
        name=config.name,
        modality=raw.modality,
        train=train,
        val=val,
        test=test,
        classes=raw.classes,
        input_shape=raw.input_shape,
        fingerprint=raw.fingerprint,
        source=raw.source,
        input_scaling=dict(raw.input_scaling),
        meta={**raw.meta, "rows": len(raw.y), "split": split_meta},
    )
