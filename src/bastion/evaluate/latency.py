"""Clean inference latency per sample, measured the way a server sees it.

A guarded server answers one request at a time, so the figure that matters for a latency
budget is the single-sample time and its tail (p95), not the batched throughput an
evaluation enjoys; both are recorded. Each single-sample call is timed on its own with
``time.perf_counter`` after a few untimed warm-up calls (first calls pay for allocation and
kernel selection). The batched figure is taken from the evaluation's own clean pass, so no
extra pass is spent on it.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from bastion.attacks import Model
from bastion.evaluate.record import Latency

__all__ = ["measure_latency"]

_WARMUP = 3


def measure_latency(
    model: Model,
    x: Tensor,
    *,
    samples: int,
    batched_seconds: float,
    batched_count: int,
    batch_size: int,
    device: torch.device,
) -> Latency:
    """Time ``samples`` single-sample forward passes over the first rows of ``x``.

    ``batched_seconds`` is the wall time the batched clean pass took over ``batched_count``
    samples.
    """
    count = min(samples, x.shape[0])
    times = np.empty(count, dtype=np.float64)
    with torch.no_grad():
        for i in range(min(_WARMUP, count)):
            model(x[i : i + 1].to(device))
        for i in range(count):
            row = x[i : i + 1].to(device)
            start = time.perf_counter()
            model(row)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[i] = time.perf_counter() - start
    return Latency(
        p50_ms=float(np.percentile(times, 50) * 1e3) if count else 0.0,
        p95_ms=float(np.percentile(times, 95) * 1e3) if count else 0.0,
        single_samples=count,
        batched_ms_per_sample=batched_seconds * 1e3 / max(batched_count, 1),
        batch_size=batch_size,
    )
