"""The loader registry and the shared checks every loader's output passes."""

from __future__ import annotations

import numpy as np
import pytest

import bastion.data as data_api
from bastion.config import Channel, DataConfig
from bastion.data import Dataset, RawData, Split, load_dataset, loaders, register_loader
from bastion.data import registry as registry_module
from bastion.errors import ConfigError, DataError


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register test loaders into a copy of the registry, dropped after the test."""
    monkeypatch.setattr(registry_module, "_LOADERS", dict(registry_module._LOADERS))


def _raw(**overrides: object) -> RawData:
    values: dict[str, object] = {
        "x": np.linspace(0, 1, 40 * 4, dtype=np.float32).reshape(40, 1, 2, 2),
        "y": (np.arange(40) % 2).astype(np.int64),
        "classes": ("a", "b"),
        "modality": Channel.IMAGE,
        "fingerprint": "0" * 64,
        "source": "made-up.bin",
    }
    values.update(overrides)
    return RawData(**values)  # type: ignore[arg-type]


def _load_with(raw: RawData, **config: object) -> Dataset:
    register_loader("made-up")(lambda _config: raw)
    return load_dataset(DataConfig(name="made-up", **config))  # type: ignore[arg-type]


def test_public_surface() -> None:
    assert set(data_api.__all__) >= {"Dataset", "Split", "load_dataset", "register_loader"}
    assert {"digits", "mnist", "npz", "csv"} <= set(loaders())


def test_unknown_loader_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"data\.name: unknown dataset loader 'imagenet'.*digits"):
        load_dataset(DataConfig(name="imagenet"))


@pytest.mark.usefixtures("scratch_registry")
def test_a_registered_loader_gets_the_shared_split() -> None:
    dataset = _load_with(_raw(), seed=4)
    assert dataset.name == "made-up"
    assert len(dataset.train) + len(dataset.val) + len(dataset.test) == 40
    assert dataset.meta["split"]["seed"] == 4
    assert dataset.input_shape == (1, 2, 2)


@pytest.mark.usefixtures("scratch_registry")
def test_a_second_loader_under_the_same_name_is_refused() -> None:
    register_loader("made-up")(lambda _config: _raw())
    with pytest.raises(ValueError, match=r"already registered"):

        @register_loader("made-up")
        def other(_config: DataConfig) -> RawData:
            return _raw()


@pytest.mark.usefixtures("scratch_registry")
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"y": np.full(40, 2, dtype=np.int64)}, r"labels must lie in 0\.\.1"),
        ({"y": np.zeros(39, dtype=np.int64)}, r"40 inputs but labels of shape \(39,\)"),
        ({"y": np.zeros(40, dtype=np.int32)}, "labels must be int64"),
        ({"classes": ("a",)}, "at least two classes"),
        ({"classes": ("a", "a")}, "class names repeat"),
        ({"x": np.full((40, 1, 2, 2), 2.0, dtype=np.float32)}, r"must lie in \[0, 1\]"),
        ({"x": np.full((40, 1, 2, 2), np.nan, dtype=np.float32)}, "NaN or infinite"),
        ({"x": np.zeros((40, 4), dtype=np.float32)}, r"must have shape \(N, C, H, W\)"),
        ({"x": np.zeros((40, 1, 2, 2), dtype=np.float64)}, "must be float32"),
        ({"x": np.zeros((0, 1, 2, 2), dtype=np.float32)}, "no rows"),
        (
            {"x": np.array([1] * 40, dtype=object), "modality": Channel.TEXT},
            "row 0 is not a string",
        ),
        ({"test_mask": np.zeros(40, dtype=np.int64)}, "test_mask must be a boolean"),
    ],
)
def test_inconsistent_loader_output_is_a_data_error(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(DataError, match=rf"made-up\.bin: .*{message}"):
        _load_with(_raw(**overrides))


def test_split_checks_lengths_and_coerces_labels() -> None:
    split = Split(np.zeros((3, 2)), np.array([0, 1, 0], dtype=np.int32), np.arange(3))
    assert split.y.dtype == np.int64
    assert len(split.subset(np.array([True, False, True]))) == 2
    with pytest.raises(DataError, match=r"x has 3 rows, y 2"):
        Split(np.zeros((3, 2)), np.array([0, 1]), np.arange(3))


def test_dataset_modality_must_be_a_channel(digits) -> None:
    with pytest.raises(DataError, match=r"modality must be one of image, text, tabular"):
        Dataset(
            name="x",
            modality="audio",
            train=digits.train,
            val=digits.val,
            test=digits.test,
            classes=digits.classes,
            input_shape=(1, 8, 8),
            fingerprint=digits.fingerprint,
            source="here",
        )
    assert isinstance(digits.modality, str)
    assert digits.modality == Channel.IMAGE
