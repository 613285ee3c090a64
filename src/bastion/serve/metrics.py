"""Prometheus metrics for one app instance.

Each app gets its own ``CollectorRegistry`` so several apps in one process (tests, the
benchmark) do not collide. Names follow Prometheus conventions; labels stay low-cardinality
(endpoint templates, layer names, error codes, reasons — never request ids or keys).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_LAYER_BUCKETS = (0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1)


class Metrics:
    """Requests, latency, per-layer time, flags, abstentions and rejections per layer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "bastion_requests",
            "HTTP requests served",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "bastion_request_seconds",
            "Request latency",
            ("endpoint",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.layer_seconds = Histogram(
            "bastion_layer_seconds",
            "Time spent in each defence layer",
            ("layer",),
            buckets=_LAYER_BUCKETS,
            registry=self.registry,
        )
        self.inputs = Counter("bastion_inputs", "Inputs predicted", registry=self.registry)
        self.flags = Counter(
            "bastion_flags", "Inputs flagged, by reason", ("reason",), registry=self.registry
        )
        self.abstentions = Counter(
            "bastion_abstentions", "Inputs the model abstained on", registry=self.registry
        )
        self.rejections = Counter(
            "bastion_rejections",
            "Requests refused, by layer and code",
            ("layer", "code"),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
