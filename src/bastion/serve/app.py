"""The guarded inference service: ``create_app(...)`` builds it, in-process or under uvicorn.

Each request to ``/v1/predict`` runs the configured layers in their stage order — request
layers (API key, body size, rate limit) on the HTTP request, then decoding and the range
check on the raw values, then :class:`~bastion.defend.stack.Guard` (squeezing, one batched
forward pass, detection, calibration, ensemble vote) — and every input it flags or abstains
on is written to the review queue before the answer goes out. An outer ASGI wrapper gives
each request an id, turns any bug into a JSON 500 with code ``internal`` (traceback logged,
never sent), records metrics and writes one JSON log line.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread
import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from bastion.config.serve import LAYER_STAGES, ServeConfig
from bastion.defend.auth import ApiKeyCheck, KeyVerifier
from bastion.defend.base import Gradient
from bastion.defend.calibrate import TemperatureScaling
from bastion.defend.detect import Detector
from bastion.defend.ensemble import EnsembleDisagreement
from bastion.defend.ratelimit import RateLimit
from bastion.defend.size import BodySizeLimit
from bastion.defend.squeeze import Squeeze
from bastion.defend.stack import Guard, Verdict
from bastion.defend.validate import RangeCheck, decode_inputs, input_scale
from bastion.errors import RejectionError, ServeError
from bastion.serve.errors import error_response, install_handlers
from bastion.serve.logs import ACCESS_LOGGER
from bastion.serve.metrics import Metrics
from bastion.serve.model import CalibrationData, ServedModel
from bastion.serve.review import GroupCommit, ReviewEntry, ReviewSink
from bastion.serve.schemas import (
    ErrorResponse,
    ModelInfo,
    PredictRequest,
    PredictResponse,
)

__all__ = ["create_app"]

_log = logging.getLogger("bastion.serve")
_access = logging.getLogger(ACCESS_LOGGER)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ENDPOINTS = frozenset(
    {"/v1/predict", "/v1/model", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}
)
_GRADIENTS: dict[str, Gradient] = {
    "api_key": ApiKeyCheck.gradient,
    "body_size": BodySizeLimit.gradient,
    "rate_limit": RateLimit.gradient,
    "validate": RangeCheck.gradient,
    "squeeze": Squeeze.gradient,
    "detect": Detector.gradient,
    "calibrate": TemperatureScaling.gradient,
    "ensemble": EnsembleDisagreement.gradient,
}
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


async def admit(request: Request, layers: list[Any], metrics: Metrics) -> Any:
    """Run the request-stage layers (keys, body size, rate limit) in order, timing each,
    and return the decoded JSON body. Shared by the image and the text service."""
    state = request.scope.setdefault("state", {})
    key_id: str | None = None
    body: bytes | None = None
    for layer in layers:
        started = time.perf_counter()
        if isinstance(layer, ApiKeyCheck):
            key_id = layer.check(request.headers)
            state["key_id"] = key_id
        elif isinstance(layer, BodySizeLimit):
            layer.check_declared(request.headers)
            body = await layer.read(request.stream())
        else:
            client = request.client.host if request.client else "unknown"
            layer.check(f"key:{key_id}" if key_id else f"ip:{client}")
        metrics.layer_seconds.labels(layer.name).observe(time.perf_counter() - started)
    if body is None:
        body = await request.body()
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RejectionError(
            f"the body is not valid JSON ({exc})",
            status=400,
            code="invalid_json",
            layer="decode",
        ) from None


class _Service:
    """Everything one app instance holds: the model, its layers, metrics, queue."""

    def __init__(
        self,
        *,
        model: ServedModel,
        config: ServeConfig,
        guard: Guard,
        keys: KeyVerifier | None,
        review: ReviewSink | None,
    ) -> None:
        self.model = model
        self.config = config
        self.guard = guard
        self.review = GroupCommit(review) if review is not None else None
        self.metrics = Metrics()
        self.scale = input_scale(model.input_scaling)
        self.request_layers: list[ApiKeyCheck | BodySizeLimit | RateLimit] = []
        self.range_check: RangeCheck | None = None
        for layer in config.layers:
            if not layer.enabled:
                continue
            if layer.name == "api_key":
                if keys is None:
                    raise ServeError("the api_key layer is enabled but no key store was given")
                self.request_layers.append(
                    ApiKeyCheck(verifier=keys, required=config.require_api_key)
                )
            elif layer.name == "body_size":
                self.request_layers.append(BodySizeLimit(max_bytes=config.max_body_bytes))
            elif layer.name == "rate_limit":
                self.request_layers.append(
                    RateLimit(rate=config.rate_limit, storage_url=config.rate_limit_storage)
                )
            elif layer.name == "validate":
                self.range_check = RangeCheck(scale=self.scale)

    def layer_table(self) -> list[dict[str, Any]]:
        return [
            {
                "name": layer.name,
                "enabled": layer.enabled,
                "stage": ("request", "input", "output")[LAYER_STAGES[layer.name]],
                "gradient": _GRADIENTS[layer.name].value,
            }
            for layer in self.config.layers
        ]

    # ------------------------------------------------------------------ predict
    async def predict(self, request: Request) -> JSONResponse:
        state = request.scope.setdefault("state", {})
        request_id: str = state["request_id"]
        payload = await admit(request, self.request_layers, self.metrics)
        raw, prefix = decode_inputs(
            payload,
            input_shape=self.model.input_shape,
            scale=self.scale,
            max_batch=self.config.max_batch,
        )
        if self.range_check is not None:
            started = time.perf_counter()
            self.range_check.check(raw, prefix)
            self.metrics.layer_seconds.labels("validate").observe(time.perf_counter() - started)
        x = torch.from_numpy(raw / np.float32(self.scale))
        started = time.perf_counter()
        verdicts = await anyio.to_thread.run_sync(self.guard, x)
        self.metrics.layer_seconds.labels("model").observe(time.perf_counter() - started)
        predictions = [self._prediction(v) for v in verdicts]
        queued = [i for i, v in enumerate(verdicts) if v.needs_review]
        if queued and self.review is not None:
            entries = [
                ReviewEntry(
                    request_id=request_id if len(verdicts) == 1 else f"{request_id}/{i}",
                    model=self.model.version,
                    inputs={"raw": raw[i].tolist(), "scale": self.scale},
                    outputs={**predictions[i], "classes": list(self.model.classes)},
                    scores=verdicts[i].scores,
                    reasons=verdicts[i].reasons,
                )
                for i in queued
            ]
            await self.review.add(entries)
        self._count(verdicts)
        state["n_inputs"] = len(verdicts)
        state["flagged"] = sum(v.flagged for v in verdicts)
        state["abstained"] = sum(v.abstained for v in verdicts)
        if self.config.log_inputs:
            state["inputs"] = raw.tolist()
        return JSONResponse(
            {
                "request_id": request_id,
                "model": self.model.version,
                "predictions": predictions,
            }
        )

    def _prediction(self, verdict: Verdict) -> dict[str, Any]:
        return {
            "label": None if verdict.abstained else self.model.classes[verdict.index],
            "class_index": verdict.index,
            "probabilities": verdict.probabilities,
            "confidence": verdict.confidence,
            "abstained": verdict.abstained,
            "flagged": verdict.flagged,
            "reasons": verdict.reasons,
            "scores": verdict.scores,
        }

    def _count(self, verdicts: list[Verdict]) -> None:
        self.metrics.inputs.inc(len(verdicts))
        for verdict in verdicts:
            if verdict.abstained:
                self.metrics.abstentions.inc()
            if verdict.flagged:
                for reason in verdict.reasons:
                    if not reason.startswith("calibrate."):
                        self.metrics.flags.labels(reason).inc()

    def info(self) -> dict[str, Any]:
        model = self.model
        return {
            "name": model.name,
            "version": model.version,
            "classes": list(model.classes),
            "input_shape": list(model.input_shape),
            "input_scaling": model.input_scaling,
            "temperature": model.temperature,
            "members": len(model.members),
            "layers": self.layer_table(),
            "lineage": model.lineage,
            "threat_model": model.threat_model,
            "evaluation": model.evaluation,
        }


class _Envelope:
    """Outermost ASGI wrapper: request id, catch-all 500, metrics, one JSON log line."""

    def __init__(self, app: ASGIApp, service: _Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            _log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            state["error_code"] = "internal"
            if not response_started:
                body = json.dumps(
                    {
                        "error": {
                            "code": "internal",
                            "message": "internal error; see the server log",
                            "field": None,
                            "request_id": request_id,
                        }
                    }
                ).encode()
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            status = 500
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            endpoint = path if path in _ENDPOINTS else "other"
            metrics = self.service.metrics
            metrics.requests.labels(endpoint, str(status)).inc()
            metrics.latency.labels(endpoint).observe(elapsed)
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": scope.get("method"),
                "path": path,
                "status": status,
                "latency_ms": round(elapsed * 1000, 3),
                "client": (scope.get("client") or ("", 0))[0],
                "model": self.service.model.version,
            }
            for key in ("key_id", "n_inputs", "flagged", "abstained", "error_code", "inputs"):
                if key in state:
                    fields[key] = state[key]
            _access.info("request", extra={"fields": fields})


def create_app(
    *,
    model: ServedModel,
    config: ServeConfig | None = None,
    calibration: CalibrationData | None = None,
    keys: KeyVerifier | None = None,
    review: ReviewSink | None = None,
) -> FastAPI:
    """Build the service for ``model`` with the layers of ``config``.

    ``calibration`` is required when the detector runs, or when an ensemble's disagreement
    threshold is to be fitted; ``keys`` when the ``api_key`` layer runs; ``review`` when any
    layer can queue inputs (detect, calibrate with a threshold above 0, ensemble).
    """
    config = config or ServeConfig()
    guard = _build_guard(model, config, calibration)
    queues = (
        guard.detector is not None
        or guard.ensemble is not None
        or (guard.calibration is not None and guard.calibration.abstain_below > 0)
    )
    if queues and review is None:
        raise ServeError(
            "the enabled layers flag or abstain, but no review queue was given to store "
            "those inputs"
        )
    service = _Service(model=model, config=config, guard=guard, keys=keys, review=review)

    app = FastAPI(
        title="Bastion guarded inference",
        version=model.version,
        description="Predictions behind layered defences against adversarial inputs.",
    )
    app.state.service = service
    install_handlers(app, on_reject=lambda exc: _rejected(service, exc))
    errors: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse} for status in (400, 401, 413, 422, 429, 500, 503)
    }

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=errors,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            }
        },
        summary="Predict one input or a batch, through the configured defence layers",
    )
    async def predict(request: Request) -> JSONResponse:
        return await service.predict(request)

    add_common_routes(app, service, review, model.version, info_model=ModelInfo)

    app.add_middleware(_EnvelopeMiddleware, service=service)
    return app


def add_common_routes(
    app: FastAPI, service: Any, review: Any, version: str, *, info_model: Any = None
) -> None:
    """The routes every served model has: model info, liveness, readiness and metrics."""

    @app.get("/v1/model", response_model=info_model, summary="The served model version")
    async def model_info() -> dict[str, Any]:
        info: dict[str, Any] = service.info()
        return info

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: model loaded, queue reachable")
    async def readyz(request: Request) -> JSONResponse:
        ping = getattr(review, "ping", None)
        if callable(ping):
            try:
                await anyio.to_thread.run_sync(ping)
            except Exception as exc:  # any failure of the store means "not ready"
                return error_response(request, 503, "not_ready", f"review queue: {exc}")
        return JSONResponse({"status": "ready", "model": version})

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)


class _EnvelopeMiddleware(_Envelope):
    """Adapter so Starlette's ``add_middleware`` can build the envelope."""

    def __init__(self, app: ASGIApp, service: _Service) -> None:
        super().__init__(app, service)


def _rejected(service: _Service, exc: RejectionError) -> None:
    service.metrics.rejections.labels(exc.layer, exc.code).inc()


def _build_guard(
    model: ServedModel, config: ServeConfig, calibration: CalibrationData | None
) -> Guard:
    try:
        guard = Guard.from_config(config, members=model.members, temperature=model.temperature)
    except ValueError as exc:
        raise ServeError(f"cannot build the defence layers: {exc}") from exc
    needs_data = guard.detector is not None or (
        guard.ensemble is not None and guard.ensemble.threshold is None
    )
    if not needs_data:
        return guard
    if calibration is None:
        raise ServeError(
            "the detect layer (or a fitted ensemble threshold) needs clean calibration data: "
            "pass --data or disable the layer"
        )
    calibration.check(model.input_shape, len(model.classes))
    x_train, y_train, x_val = calibration.tensors()
    return guard.fit(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        num_classes=len(model.classes),
        target_fpr=config.detector_target_fpr,
    )
