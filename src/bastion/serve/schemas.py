"""The HTTP contract as pydantic models — the source of the OpenAPI document.

The predict endpoint reads its body itself (the size limit must run before anything parses
it), so these models document the request rather than parse it; responses are built as
plain dicts in the hot path and match these shapes (a test checks one against the other).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ErrorBody",
    "ErrorResponse",
    "ModelInfo",
    "PredictRequest",
    "PredictResponse",
    "Prediction",
    "TextPredictRequest",
]

Sample = list[Any] | str


class PredictRequest(BaseModel):
    """Exactly one of ``input`` and ``inputs``. A sample is a nested list of numbers of the
    model's input shape, on the raw scale (``input_scaling``), or a base64 PNG of that size."""

    input: Sample | None = Field(default=None, description="one sample")
    inputs: list[Sample] | None = Field(default=None, description="a batch of samples")


class TextPredictRequest(BaseModel):
    """For a text model: exactly one of ``text`` and ``texts`` (strings, length-limited)."""

    text: str | None = Field(default=None, description="one text")
    texts: list[str] | None = Field(default=None, description="a batch of texts")


class Prediction(BaseModel):
    label: str | None = Field(description="predicted class; null when abstained")
    class_index: int
    probabilities: list[float] = Field(description="calibrated, in the order of classes")
    confidence: float
    abstained: bool
    flagged: bool
    reasons: list[str]
    scores: dict[str, float]


class PredictResponse(BaseModel):
    request_id: str
    model: str = Field(description="the served model version")
    predictions: list[Prediction]


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code")
    message: str
    field: str | None = None
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ModelInfo(BaseModel):
    name: str
    version: str
    classes: list[str]
    input_shape: list[int]
    input_scaling: dict[str, float]
    temperature: float
    members: int
    layers: list[dict[str, Any]]
    lineage: dict[str, Any] | None = None
    threat_model: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
