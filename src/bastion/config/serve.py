"""The guarded server's schema: where it listens, which defence layers run in which order, and
the limits and thresholds those layers apply.

The layer list is ordered and each entry is typed by its ``name``, so a misspelt option is an
error at load time rather than a silently ignored key. Layers fall into three stages that run
in this order: *request* layers look at the HTTP request (key, size, rate), *input* layers at
the decoded input tensor (range, squeezing), *output* layers at the model's outputs
(detection, calibration, ensemble). Within a stage the list order is the run order; a list
that puts a later stage before an earlier one is rejected, because it could not be honoured.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from bastion.config.base import Section

__all__ = [
    "LAYER_STAGES",
    "ApiKeyLayer",
    "BodySizeLayer",
    "CalibrateLayer",
    "DetectLayer",
    "DetectOptions",
    "EnsembleLayer",
    "EnsembleOptions",
    "LayerConfig",
    "NoOptions",
    "RateLimitLayer",
    "ServeConfig",
    "SqueezeLayer",
    "SqueezeOptions",
    "ValidateLayer",
    "default_layers",
]

#: stage of each layer name; stages run request -> input -> output
LAYER_STAGES: dict[str, int] = {
    "api_key": 0,
    "body_size": 0,
    "rate_limit": 0,
    "validate": 1,
    "squeeze": 1,
    "detect": 2,
    "calibrate": 2,
    "ensemble": 2,
}
_STAGE_NAMES = ("request", "input", "output")


class NoOptions(Section):
    """A layer whose settings live at the top of the serve section (limits, thresholds)."""


class SqueezeOptions(Section):
    """Input squeezing applied to every input before the model sees it."""

    bit_depth: int | None = Field(default=None, ge=1, le=16, description="bits per value kept")
    median_size: int | None = Field(default=None, ge=2, le=7, description="median window")

    @model_validator(mode="after")
    def _one_squeezer(self) -> SqueezeOptions:
        if self.bit_depth is None and self.median_size is None:
            raise ValueError("set at least one of bit_depth or median_size")
        return self


class DetectOptions(Section):
    """Adversarial-input detectors; thresholds are fitted at start-up for the target FPR."""

    methods: tuple[Literal["squeeze", "mahalanobis"], ...] = Field(
        default=("squeeze", "mahalanobis"), min_length=1
    )
    squeeze_bit_depth: int = Field(
        default=4, ge=1, le=16, description="Xu et al. use 1 for MNIST, 5 for CIFAR-10"
    )
    squeeze_median_size: int | None = Field(
        default=None, ge=2, le=7, description="2 for 28x28 images; destroys 8x8 digits"
    )
    fit_samples: int = Field(default=5000, gt=0, description="training rows for Mahalanobis")

    @field_validator("methods")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"each method at most once; got {list(value)}")
        return value


class EnsembleOptions(Section):
    """Flag inputs on which the members of an ensemble version disagree."""

    max_disagreement: float | None = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        description="flag above this fraction of dissenting members; None: fit for target FPR",
    )


class _Layer(Section):
    enabled: bool = True


class ApiKeyLayer(_Layer):
    name: Literal["api_key"]
    options: NoOptions = Field(default_factory=NoOptions)


class BodySizeLayer(_Layer):
    name: Literal["body_size"]
    options: NoOptions = Field(default_factory=NoOptions)


class RateLimitLayer(_Layer):
    name: Literal["rate_limit"]
    options: NoOptions = Field(default_factory=NoOptions)


class ValidateLayer(_Layer):
    name: Literal["validate"]
    options: NoOptions = Field(default_factory=NoOptions)


class SqueezeLayer(_Layer):
    name: Literal["squeeze"]
    options: SqueezeOptions = Field(default_factory=lambda: SqueezeOptions(bit_depth=5))


class DetectLayer(_Layer):
    name: Literal["detect"]
    options: DetectOptions = Field(default_factory=DetectOptions)


class CalibrateLayer(_Layer):
    name: Literal["calibrate"]
    options: NoOptions = Field(default_factory=NoOptions)


class EnsembleLayer(_Layer):
    name: Literal["ensemble"]
    options: EnsembleOptions = Field(default_factory=EnsembleOptions)


LayerConfig = Annotated[
    ApiKeyLayer
    | BodySizeLayer
    | RateLimitLayer
    | ValidateLayer
    | SqueezeLayer
    | DetectLayer
    | CalibrateLayer
    | EnsembleLayer,
    Field(discriminator="name"),
]


def default_layers() -> list[LayerConfig]:
    """The full stack in its natural order; squeezing is off (it costs clean accuracy)."""
    return [
        ApiKeyLayer(name="api_key"),
        BodySizeLayer(name="body_size"),
        RateLimitLayer(name="rate_limit"),
        ValidateLayer(name="validate"),
        SqueezeLayer(name="squeeze", enabled=False),
        DetectLayer(name="detect"),
        CalibrateLayer(name="calibrate"),
        EnsembleLayer(name="ensemble"),
    ]


class ServeConfig(Section):
    """Host, port, workers, the ordered defence layers and their limits and thresholds."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    layers: list[LayerConfig] = Field(default_factory=default_layers)
    require_api_key: bool = Field(
        default=True, description="False: anonymous requests pass (a given key is still checked)"
    )
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    max_batch: int = Field(default=256, gt=0, description="inputs per request")
    rate_limit: str = Field(default="100/minute", description="per key, `limits` notation")
    rate_limit_storage: str = Field(default="memory://", description="memory:// or redis://…")
    detector_target_fpr: float = Field(default=0.05, gt=0.0, lt=1.0)
    abstain_below: float = Field(
        default=0.5, ge=0.0, le=1.0, description="abstain when calibrated confidence is lower"
    )
    log_inputs: bool = Field(default=False, description="put raw inputs in the request log")

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate such as '100/minute': {exc}") from exc
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in {"memory", "redis", "rediss", "redis+unix", "redis+sentinel"}:
            raise ValueError("must be memory:// or a redis:// URL")
        return value

    @field_validator("layers")
    @classmethod
    def _order(cls, layers: list[LayerConfig]) -> list[LayerConfig]:
        seen: set[str] = set()
        stage = 0
        for layer in layers:
            if layer.name in seen:
                raise ValueError(f"layer {layer.name!r} is listed twice")
            seen.add(layer.name)
            this = LAYER_STAGES[layer.name]
            if this < stage:
                raise ValueError(
                    f"layer {layer.name!r} ({_STAGE_NAMES[this]} stage) cannot come after a "
                    f"{_STAGE_NAMES[stage]}-stage layer; stages run request, input, output"
                )
            stage = this
        return layers

    def layer(self, name: str) -> LayerConfig | None:
        """The enabled layer called ``name``, or ``None`` when absent or disabled."""
        for layer in self.layers:
            if layer.name == name and layer.enabled:
                return layer
        return None
