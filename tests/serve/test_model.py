"""Loading what is served: artifact folders, ensembles, temperatures, registry versions."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from fastapi import FastAPI
from tests.serve.conftest import client, run

from bastion import models
from bastion.config.serve import EnsembleLayer, EnsembleOptions, ServeConfig
from bastion.data import Dataset
from bastion.errors import ModelError, NotFoundError
from bastion.registry import Registry
from bastion.serve.app import create_app
from bastion.serve.model import CalibrationData, load_model_dir
from bastion.serve.registry import RegistryReviewSink, load_version


def test_model_dir_reads_the_temperature_from_the_artifact(
    digits_cnn_dir: Path, tmp_path: Path
) -> None:
    folder = shutil.copytree(digits_cnn_dir, tmp_path / "model")
    assert load_model_dir(folder).temperature == 1.0
    models.update_extra(folder, temperature=1.7)
    served = load_model_dir(folder)
    assert served.temperature == pytest.approx(1.7)
    assert served.version == "model@dir"
    models.update_extra(folder, temperature=-1)
    with pytest.raises(ModelError, match="temperature"):
        load_model_dir(folder)


def test_bad_folders_are_clear_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_model_dir(tmp_path / "missing")
    with pytest.raises(ModelError, match="members"):
        load_model_dir(tmp_path)


def test_an_ensemble_folder_serves_the_mean_and_reports_disagreement(
    digits_cnn_dir: Path,
    digits: Dataset,
    digits_cnn: torch.nn.Module,
    calibration: CalibrationData,
    registry: Registry,
    tmp_path: Path,
    raw_test: list[Any],
) -> None:
    root = tmp_path / "ensemble"
    shutil.copytree(digits_cnn_dir, root / "members" / "a")
    other = models.build("small_cnn", input_shape=digits.input_shape, num_classes=10)
    other.load_state_dict(digits_cnn.state_dict())
    with torch.no_grad():
        cast(torch.nn.Linear, other.head).bias[3] += 8.0  # a member that leans towards "3"
    models.save(
        other,
        root / "members" / "b",
        architecture="small_cnn",
        arguments={},
        input_shape=digits.input_shape,
        classes=digits.classes,
        input_scaling=digits.input_scaling,
    )
    served = load_model_dir(root)
    assert served.is_ensemble
    app = create_app(
        model=served,
        config=ServeConfig(
            layers=[EnsembleLayer(name="ensemble", options=EnsembleOptions(max_disagreement=0))],
            require_api_key=False,
        ),
        calibration=calibration,
        review=RegistryReviewSink(registry),
    )

    async def go() -> tuple[Any, Any]:
        async with client(app) as http:
            info = await http.get("/v1/model")
            answer = await http.post("/v1/predict", json={"inputs": raw_test[:60]})
            return info.json(), answer.json()

    info, answer = run(go())
    assert info["members"] == 2
    scores = [p["scores"]["ensemble_disagreement"] for p in answer["predictions"]]
    assert set(scores) <= {0.0, 0.5}
    assert 0.5 in scores
    for prediction, score in zip(answer["predictions"], scores, strict=True):
        assert prediction["flagged"] == (score > 0)
        assert ("ensemble.disagreement" in prediction["reasons"]) == (score > 0)
    assert len(registry.review.list()) == sum(score > 0 for score in scores)


def test_a_registry_version_is_served_with_its_lineage(
    digits_cnn_dir: Path, registry: Registry, make_app: Callable[..., FastAPI]
) -> None:
    version = registry.models.register(
        "digits", artifact=digits_cnn_dir, config={"threat_model": {"image": {"eps": 0.3}}}
    )
    registry.models.promote(version.ref, "staging", reason="test")
    served, snapshot = load_version(registry, "digits@staging")
    assert served.version == "digits:1"
    assert served.lineage is not None
    assert served.lineage["stage"] == "staging"
    assert served.threat_model == {"image": {"eps": 0.3}}
    assert served.evaluation is None
    assert snapshot["threat_model"] == {"image": {"eps": 0.3}}
    with pytest.raises(NotFoundError):
        load_version(registry, "digits@production")
