"""Guarded serving for text models: the same HTTP contract and request layers, text inputs.

A text filter's attack surface is its characters, not pixel values, so the image-only layers
(squeezing, the Mahalanobis/squeeze detector, the range check) have nothing to act on and are
skipped — logged once at start-up. What replaces them is the sanitiser the model was trained
behind (:mod:`bastion.defend.text`): every text is put in its canonical form before the model
sees it, and a text the sanitiser *changed* (homoglyphs, zero-width characters, leetspeak) is
flagged ``sanitized`` and queued for review — the change itself is evidence of evasion.

API key, body size and rate limit act on the HTTP request only, so they are reused as is;
so are the envelope (request id, catch-all 500, metrics, access log) and the review queue.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio.to_thread
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bastion.config.serve import ServeConfig
from bastion.defend.auth import ApiKeyCheck, KeyVerifier
from bastion.defend.ratelimit import RateLimit
from bastion.defend.size import BodySizeLimit
from bastion.defend.text import Sanitizer
from bastion.errors import BastionError, ModelError, RejectionError, ServeError
from bastion.models.text import CharBagNet, TfidfLogReg, load_text_model, read_text_spec
from bastion.registry import Registry
from bastion.registry.keys import ApiKeyStore
from bastion.serve.app import _EnvelopeMiddleware, _rejected, add_common_routes, admit
from bastion.serve.errors import install_handlers
from bastion.serve.metrics import Metrics
from bastion.serve.registry import RegistryReviewSink
from bastion.serve.review import GroupCommit, ReviewEntry, ReviewSink
from bastion.serve.schemas import ErrorResponse, PredictResponse, TextPredictRequest

__all__ = [
    "TextServedModel",
    "create_text_app",
    "is_text_model_dir",
    "load_text_model_dir",
    "load_text_version",
]

_log = logging.getLogger("bastion.serve")

DEFAULT_MAX_CHARS = 5000
_IMAGE_ONLY = ("validate", "squeeze", "detect", "ensemble")


@dataclass(frozen=True)
class TextServedModel:
    """A loaded text model version; ``sanitizer`` is the one it was trained behind (if any)."""

    name: str
    version: str
    model: TfidfLogReg | CharBagNet
    classes: tuple[str, ...]
    sanitizer: Sanitizer | None = None
    temperature: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def is_text_model_dir(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds a text model artifact (its ``model.json`` has a ``kind``)."""
    try:
        read_text_spec(Path(folder))
    except ModelError:
        return False
    return True


def load_text_model_dir(
    folder: str | os.PathLike[str], *, name: str | None = None, version: str | None = None
) -> TextServedModel:
    """Load a text artifact folder written by :func:`bastion.models.text.save_text_model`."""
    root = Path(folder)
    if not root.is_dir():
        raise ModelError(f"{root}: model folder not found")
    spec = read_text_spec(root)
    sanitizer = None
    described = spec.extra.get("sanitizer")
    if described is not None:
        if not isinstance(described, dict):
            raise ModelError(f"{root}: extra.sanitizer must be an object; got {described!r}")
        try:
            sanitizer = Sanitizer.from_dict(described)
        except BastionError as exc:
            raise ModelError(f"{root}: extra.sanitizer: {exc}") from exc
    temperature = spec.extra.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise ModelError(f"{root}: extra.temperature must be a number > 0; got {temperature!r}")
    if not temperature > 0:
        raise ModelError(f"{root}: extra.temperature must be a number > 0; got {temperature!r}")
    return TextServedModel(
        name=name or root.name,
        version=version or f"{root.name}@dir",
        model=load_text_model(root),
        classes=spec.classes,
        sanitizer=sanitizer,
        temperature=float(temperature),
        extra=spec.extra,
        source=str(root),
    )


def load_text_version(registry: Registry, ref: str) -> TextServedModel | None:
    """The registered version ``ref`` as a text model, or None when it is not one."""
    version = registry.models.verify_artifact(ref)
    if not is_text_model_dir(version.artifact_path):
        return None
    return load_text_model_dir(version.artifact_path, name=version.name, version=version.ref)


def _invalid(message: str, field: str) -> RejectionError:
    return RejectionError(message, status=422, code="invalid_input", layer="validate", field=field)


def decode_texts(payload: Any, *, max_batch: int, max_chars: int) -> tuple[list[str], str]:
    """``{"text": s} | {"texts": [s, ...]}`` -> (texts, field prefix); 422 naming the field."""
    if not isinstance(payload, dict):
        raise _invalid("the body must be a JSON object with 'text' or 'texts'", "body")
    if "input" in payload or "inputs" in payload:
        key = "input" if "input" in payload else "inputs"
        raise _invalid(
            "this is a text model: send 'text' (one string) or 'texts' (a list of strings); "
            "'input'/'inputs' carry image samples",
            key,
        )
    unknown = sorted(set(payload) - {"text", "texts"})
    if unknown:
        raise _invalid("unknown field (expected 'text' or 'texts')", unknown[0])
    if ("text" in payload) == ("texts" in payload):
        raise _invalid("give exactly one of 'text' (one string) or 'texts' (a batch)", "body")
    if "text" in payload:
        samples, prefix = [payload["text"]], "text"
    else:
        samples, prefix = payload["texts"], "texts"
        if not isinstance(samples, list):
            raise _invalid(f"must be a list of strings; got {type(samples).__name__}", prefix)
        if not samples:
            raise _invalid("must hold at least one text", prefix)
        if len(samples) > max_batch:
            raise _invalid(f"at most {max_batch} texts per request; got {len(samples)}", prefix)
    for i, sample in enumerate(samples):
        where = prefix if prefix == "text" else f"{prefix}[{i}]"
        if not isinstance(sample, str):
            raise _invalid(f"must be a string; got {type(sample).__name__}", where)
        if len(sample) > max_chars:
            raise _invalid(f"at most {max_chars} characters; got {len(sample)}", where)
    return list(samples), prefix


def _calibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling on probabilities: softmax(log p / T)."""
    logits = np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0)) / temperature
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return out


class _TextService:
    """One text app's model, sanitiser, request layers, metrics and queue."""

    def __init__(
        self,
        *,
        model: TextServedModel,
        config: ServeConfig,
        keys: KeyVerifier | None,
        review: ReviewSink | None,
        sanitizer: Sanitizer | None,
        max_chars: int,
    ) -> None:
        self.model = model
        self.config = config
        self.sanitizer = sanitizer
        self.max_chars = max_chars
        self.review = GroupCommit(review) if review is not None else None
        self.metrics = Metrics()
        self.calibrate = config.layer("calibrate") is not None
        self.abstain_below = config.abstain_below if self.calibrate else 0.0
        self.request_layers: list[ApiKeyCheck | BodySizeLimit | RateLimit] = []
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

    async def predict(self, request: Request) -> JSONResponse:
        state = request.scope.setdefault("state", {})
        request_id: str = state["request_id"]
        payload = await admit(request, self.request_layers, self.metrics)
        texts, _ = decode_texts(payload, max_batch=self.config.max_batch, max_chars=self.max_chars)
        cleaned = texts
        if self.sanitizer is not None:
            started = time.perf_counter()
            cleaned = self.sanitizer(texts)
            self.metrics.layer_seconds.labels("sanitize").observe(time.perf_counter() - started)
        started = time.perf_counter()
        raw = await anyio.to_thread.run_sync(self.model.model.predict_proba, cleaned)
        self.metrics.layer_seconds.labels("model").observe(time.perf_counter() - started)
        temperature = self.model.temperature if self.calibrate else 1.0
        probs = _calibrated(np.asarray(raw), temperature)
        predictions = []
        for i, text in enumerate(texts):
            confidence = float(probs[i].max())
            index = int(probs[i].argmax())
            abstained = confidence < self.abstain_below
            changed = cleaned[i] != text
            reasons = ["sanitized"] if changed else []
            if abstained:
                reasons.append("calibrate.low_confidence")
            predictions.append(
                {
                    "label": None if abstained else self.model.classes[index],
                    "class_index": index,
                    "probabilities": probs[i].tolist(),
                    "confidence": confidence,
                    "abstained": bool(abstained),
                    "flagged": changed,
                    "reasons": reasons,
                    "scores": {},
                }
            )
        queued = [i for i, p in enumerate(predictions) if p["flagged"] or p["abstained"]]
        if queued and self.review is not None:
            entries = [
                ReviewEntry(
                    request_id=request_id if len(texts) == 1 else f"{request_id}/{i}",
                    model=self.model.version,
                    inputs={"text": texts[i], "sanitized": cleaned[i]},
                    outputs={**predictions[i], "classes": list(self.model.classes)},
                    scores={},
                    reasons=list(predictions[i]["reasons"]),
                )
                for i in queued
            ]
            await self.review.add(entries)
        self.metrics.inputs.inc(len(texts))
        for p in predictions:
            if p["abstained"]:
                self.metrics.abstentions.inc()
            if p["flagged"]:
                self.metrics.flags.labels("sanitized").inc()
        state["n_inputs"] = len(texts)
        state["flagged"] = sum(bool(p["flagged"]) for p in predictions)
        state["abstained"] = sum(bool(p["abstained"]) for p in predictions)
        if self.config.log_inputs:
            state["inputs"] = texts
        return JSONResponse(
            {"request_id": request_id, "model": self.model.version, "predictions": predictions}
        )

    def info(self) -> dict[str, Any]:
        model = self.model
        return {
            "name": model.name,
            "version": model.version,
            "modality": "text",
            "classes": list(model.classes),
            "input_shape": [],
            "input_scaling": {},
            "temperature": model.temperature,
            "members": 1,
            "sanitizer": self.sanitizer.describe() if self.sanitizer is not None else None,
            "layers": [
                {"name": layer.name, "enabled": layer.enabled and layer.name not in _IMAGE_ONLY}
                for layer in self.config.layers
            ],
            "lineage": None,
            "threat_model": None,
            "evaluation": None,
        }


def create_text_app(
    *,
    model: TextServedModel,
    config: ServeConfig | None = None,
    keys: KeyVerifier | None = None,
    review: ReviewSink | None = None,
    sanitize: bool | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> FastAPI:
    """Build the guarded service for a text model.

    ``sanitize``: ``None`` sanitises with the model's own sanitiser when it was trained
    behind one, else with the default :class:`Sanitizer` (text is always canonicalised);
    ``False`` turns sanitising off; ``True`` forces it on.
    """
    config = config or ServeConfig()
    if max_chars <= 0:
        raise ServeError(f"max_chars must be > 0; got {max_chars}")
    sanitizer = None
    if sanitize is None or sanitize:
        sanitizer = model.sanitizer or Sanitizer()
    skipped = [layer.name for layer in config.layers if layer.enabled and layer.name in _IMAGE_ONLY]
    if skipped:
        _log.info(
            "text model %s: skipping image-only layers %s (%s)",
            model.version,
            ", ".join(skipped),
            "sanitiser on" if sanitizer is not None else "sanitiser off",
        )
    queues = sanitizer is not None or (
        config.layer("calibrate") is not None and config.abstain_below > 0
    )
    if queues and review is None:
        raise ServeError(
            "the enabled layers flag or abstain, but no review queue was given to store "
            "those inputs"
        )
    service = _TextService(
        model=model,
        config=config,
        keys=keys,
        review=review,
        sanitizer=sanitizer,
        max_chars=max_chars,
    )
    app = FastAPI(
        title="Bastion guarded inference (text)",
        version=model.version,
        description="Text predictions behind a sanitiser and layered request defences.",
    )
    app.state.service = service
    install_handlers(app, on_reject=lambda exc: _rejected(cast(Any, service), exc))
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
                "content": {"application/json": {"schema": TextPredictRequest.model_json_schema()}},
            }
        },
        summary="Predict one text or a batch, through the sanitiser and request layers",
    )
    async def predict(request: Request) -> JSONResponse:
        return await service.predict(request)

    add_common_routes(app, service, review, model.version)

    app.add_middleware(_EnvelopeMiddleware, service=cast(Any, service))
    return app


def build_text_app(spec: Any, registry: Registry) -> FastAPI | None:
    """The text app for a :class:`~bastion.serve.run.ServeSpec` naming a text model, else None.

    ``bastion serve`` calls this first, so a registered text version or a text artifact folder
    is served through :func:`create_text_app` and everything else through the image app.
    """
    if spec.model_ref is not None:
        model = load_text_version(registry, spec.model_ref)
    elif is_text_model_dir(spec.model_dir or ""):
        model = load_text_model_dir(spec.model_dir or "")
    else:
        model = None
    if model is None:
        return None
    keys = ApiKeyStore(registry.database) if spec.serve.layer("api_key") is not None else None
    return create_text_app(
        model=model, config=spec.serve, keys=keys, review=RegistryReviewSink(registry)
    )
