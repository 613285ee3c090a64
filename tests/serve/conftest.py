"""Server fixtures: a fresh SQLite registry per test, the digits model, and an app factory."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import torch
from fastapi import FastAPI

from bastion.config.serve import ServeConfig
from bastion.data import Dataset
from bastion.registry import Registry
from bastion.registry.keys import ApiKeyStore
from bastion.serve.app import create_app
from bastion.serve.model import CalibrationData, ServedModel
from bastion.serve.registry import RegistryReviewSink

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def client(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bastion.test", headers=headers
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(url=f"sqlite:///{tmp_path / 'registry.db'}", artifacts=tmp_path) as reg:
        yield reg


@pytest.fixture
def keys(registry: Registry) -> ApiKeyStore:
    return ApiKeyStore(registry.database)


@pytest.fixture(scope="session")
def served(digits: Dataset, digits_cnn: torch.nn.Module) -> ServedModel:
    return ServedModel(
        name="digits",
        version="digits:1",
        members=[digits_cnn],
        input_shape=digits.input_shape,
        classes=digits.classes,
        input_scaling=digits.input_scaling,
    )


@pytest.fixture(scope="session")
def calibration(digits: Dataset) -> CalibrationData:
    return CalibrationData(x_train=digits.train.x, y_train=digits.train.y, x_val=digits.val.x)


@pytest.fixture
def make_app(
    served: ServedModel, calibration: CalibrationData, registry: Registry, keys: ApiKeyStore
) -> Callable[..., FastAPI]:
    def build(**settings: Any) -> FastAPI:
        return create_app(
            model=served,
            config=ServeConfig(**settings),
            calibration=calibration,
            keys=keys,
            review=RegistryReviewSink(registry),
        )

    return build


@pytest.fixture
def raw_test(digits: Dataset) -> list[list[list[list[float]]]]:
    """The digits test inputs on the raw 0..16 scale, as JSON-ready nested lists."""
    scaled = digits.test.x * digits.input_scaling["scale"]
    return [sample.tolist() for sample in scaled]
