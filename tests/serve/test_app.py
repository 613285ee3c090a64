"""The service in-process (httpx ASGI transport): contract, errors, layers, metrics, logs."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image
from tests.serve.conftest import client, run

from bastion.config.serve import (
    BodySizeLayer,
    CalibrateLayer,
    RateLimitLayer,
    ServeConfig,
    ValidateLayer,
)
from bastion.data import Dataset
from bastion.errors import ServeError
from bastion.registry import Registry
from bastion.registry.keys import ApiKeyStore
from bastion.serve.app import create_app
from bastion.serve.logs import ACCESS_LOGGER, JsonFormatter
from bastion.serve.model import ServedModel
from bastion.serve.schemas import ErrorResponse, PredictResponse

Build = Callable[..., FastAPI]


def _bare() -> dict[str, Any]:
    return {"layers": [], "require_api_key": False}


def test_predict_one_and_a_batch(make_app: Build, raw_test: list[Any], digits: Dataset) -> None:
    app = make_app(**_bare())

    async def go() -> tuple[Any, Any]:
        async with client(app) as http:
            one = await http.post("/v1/predict", json={"input": raw_test[0]})
            many = await http.post("/v1/predict", json={"inputs": raw_test[:5]})
            return one, many

    one, many = run(go())
    assert one.status_code == 200, one.text
    body = PredictResponse.model_validate(one.json())
    assert body.request_id == one.headers["x-request-id"]
    assert body.model == "digits:1"
    prediction = body.predictions[0]
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert prediction.label == digits.classes[prediction.class_index]
    batch = PredictResponse.model_validate(many.json())
    labels = [p.class_index for p in batch.predictions]
    assert len(labels) == 5
    assert np.mean(np.array(labels) == digits.test.y[:5]) >= 0.8


def test_png_input_gives_the_same_answer_as_the_list(make_app: Build, digits: Dataset) -> None:
    app = make_app(**_bare())
    pixels = np.round(digits.test.x[3, 0] * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    as_list = (pixels.astype(np.float32) / 255 * 16)[None].tolist()

    async def go() -> tuple[Any, Any]:
        async with client(app) as http:
            a = await http.post("/v1/predict", json={"input": png})
            b = await http.post("/v1/predict", json={"input": as_list})
            return a.json(), b.json()

    a, b = run(go())
    assert a["predictions"][0]["probabilities"] == pytest.approx(
        b["predictions"][0]["probabilities"], abs=1e-5
    )


def _error(response: Any, status: int, code: str) -> ErrorResponse:
    assert response.status_code == status, response.text
    error = ErrorResponse.model_validate(response.json())
    assert error.error.code == code
    assert "Traceback" not in response.text
    return error


def test_api_key_required_valid_and_revoked(
    make_app: Build, keys: ApiKeyStore, raw_test: list[Any]
) -> None:
    app = make_app(layers=[{"name": "api_key"}])
    created = keys.create("tests")

    async def go() -> list[Any]:
        async with client(app) as http:
            missing = await http.post("/v1/predict", json={"input": raw_test[0]})
            wrong = await http.post(
                "/v1/predict", json={"input": raw_test[0]}, headers={"x-api-key": "bst_nope"}
            )
            good = await http.post(
                "/v1/predict",
                json={"input": raw_test[0]},
                headers={"authorization": f"Bearer {created.token}"},
            )
            keys.revoke(created.key.key_id)
            revoked = await http.post(
                "/v1/predict", json={"input": raw_test[0]}, headers={"x-api-key": created.token}
            )
            return [missing, wrong, good, revoked]

    missing, wrong, good, revoked = run(go())
    _error(missing, 401, "unauthorized")
    _error(wrong, 401, "unauthorized")
    assert good.status_code == 200
    _error(revoked, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"


def test_bad_requests_get_4xx_json_naming_the_problem(make_app: Build, raw_test: list[Any]) -> None:
    app = make_app(
        layers=[BodySizeLayer(name="body_size"), ValidateLayer(name="validate")],
        require_api_key=False,
        max_body_bytes=2000,
    )
    too_big = [raw_test[0]] * 10
    out_of_range = json.loads(json.dumps(raw_test[0]))
    out_of_range[0][2][3] = 17

    async def go() -> list[Any]:
        async with client(app) as http:
            return [
                await http.post("/v1/predict", json={"inputs": too_big}),
                await http.post("/v1/predict", json={"input": out_of_range}),
                await http.post("/v1/predict", content=b"{not json"),
                await http.post("/v1/predict", content=b'{"input": [[[NaN]]]}'),
                await http.post("/v1/predict", json={"input": [[0.0] * 8] * 8}),
                await http.get("/v1/predict"),
                await http.get("/nowhere"),
            ]

    big, rng, bad_json, nan, shape, method, missing = run(go())
    _error(big, 413, "payload_too_large")
    assert _error(rng, 422, "invalid_input").error.field == "input[0][2][3]"
    _error(bad_json, 400, "invalid_json")
    _error(nan, 422, "invalid_input")
    assert "shape" in _error(shape, 422, "invalid_input").error.message
    _error(method, 405, "method_not_allowed")
    _error(missing, 404, "not_found")


def test_a_bug_is_a_500_with_code_internal_and_no_traceback(
    make_app: Build, raw_test: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(**_bare())

    def broken(x: Any) -> Any:
        raise RuntimeError("secret internal detail")

    app.state.service.guard = broken

    async def go() -> Any:
        async with client(app) as http:
            return await http.post("/v1/predict", json={"input": raw_test[0]})

    with caplog.at_level(logging.ERROR, logger="bastion.serve"):
        response = run(go())
    error = _error(response, 500, "internal")
    assert "secret" not in response.text
    assert error.error.request_id == response.headers["x-request-id"]
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


def test_rate_limit_is_exact_to_the_request(make_app: Build, raw_test: list[Any]) -> None:
    app = make_app(
        layers=[RateLimitLayer(name="rate_limit")], require_api_key=False, rate_limit="7/minute"
    )

    async def go() -> list[Any]:
        import asyncio

        async with client(app) as http:
            return await asyncio.gather(
                *[http.post("/v1/predict", json={"input": raw_test[0]}) for _ in range(12)]
            )

    responses = run(go())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [429] * 5
    limited = [r for r in responses if r.status_code == 429]
    assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in limited)
    _error(limited[0], 429, "rate_limited")


def test_model_health_ready_metrics_and_openapi(make_app: Build, raw_test: list[Any]) -> None:
    app = make_app(
        layers=[ValidateLayer(name="validate"), CalibrateLayer(name="calibrate")],
        require_api_key=False,
        abstain_below=1.0,  # everything abstains: exercises the queue and the counters
    )

    async def go() -> list[Any]:
        async with client(app) as http:
            await http.post("/v1/predict", json={"inputs": raw_test[:3]})
            await http.post("/v1/predict", json={"input": [[[99.0] * 8] * 8]})
            return [
                await http.get("/v1/model"),
                await http.get("/healthz"),
                await http.get("/readyz"),
                await http.get("/metrics"),
                await http.get("/openapi.json"),
            ]

    info, health, ready, metrics, openapi = run(go())
    model = info.json()
    assert model["version"] == "digits:1"
    assert model["input_shape"] == [1, 8, 8]
    gradients = {layer["name"]: layer["gradient"] for layer in model["layers"]}
    assert gradients == {"validate": "none", "calibrate": "exact"}
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    text = metrics.text
    assert 'bastion_requests_total{endpoint="/v1/predict",status="200"} 1.0' in text
    assert 'bastion_rejections_total{code="invalid_input",layer="validate"} 1.0' in text
    assert "bastion_abstentions_total 3.0" in text
    assert 'bastion_layer_seconds_count{layer="model"} 1.0' in text
    spec = openapi.json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["properties"]) == {"input", "inputs"}


def test_one_json_log_line_per_request_without_raw_inputs_by_default(
    make_app: Build, raw_test: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    quiet = make_app(**_bare())
    loud = make_app(**_bare(), log_inputs=True)

    async def go() -> None:
        for app in (quiet, loud):
            async with client(app) as http:
                await http.post("/v1/predict", json={"input": raw_test[0]})

    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        run(go())
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["status"] == 200
    assert first["path"] == "/v1/predict"
    assert first["n_inputs"] == 1
    assert "latency_ms" in first
    assert "inputs" not in first
    assert second["inputs"] == [raw_test[0]]


def test_start_up_refuses_missing_pieces(served: ServedModel) -> None:
    with pytest.raises(ServeError, match="key store"):
        create_app(model=served, config=ServeConfig(layers=[{"name": "api_key"}]))
    with pytest.raises(ServeError, match="calibration data"):
        create_app(model=served, config=ServeConfig(layers=[{"name": "detect"}]))
    with pytest.raises(ServeError, match="review queue"):
        create_app(
            model=served,
            config=ServeConfig(layers=[{"name": "calibrate"}], abstain_below=0.5),
        )


def test_flagged_and_abstained_inputs_reach_the_review_queue(
    make_app: Build, registry: Registry, raw_test: list[Any]
) -> None:
    app = make_app(layers=[CalibrateLayer(name="calibrate")], abstain_below=1.0)
    app_open = make_app(
        layers=[CalibrateLayer(name="calibrate")], abstain_below=1.0, require_api_key=False
    )

    async def go() -> Any:
        async with client(app_open) as http:
            single = await http.post("/v1/predict", json={"input": raw_test[0]})
            batch = await http.post("/v1/predict", json={"inputs": raw_test[1:3]})
            return single.json(), batch.json()

    del app
    single, batch = run(go())
    items = {item.request_id: item for item in registry.review.list()}
    assert set(items) == {
        single["request_id"],
        f"{batch['request_id']}/0",
        f"{batch['request_id']}/1",
    }
    item = items[single["request_id"]]
    assert item.inputs["raw"] == raw_test[0]
    assert item.outputs["abstained"] is True
    assert item.outputs["label"] is None
    assert "calibrate.low_confidence" in item.reasons
