"""The report's figures as PNG bytes, drawn with matplotlib's Agg backend (no display).

Each function takes report data, never a model, so a stored report can be redrawn.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from bastion.evaluate.report.data import (
    CurvePoint,
    ExampleGrid,
    PerClass,
    ReliabilityBins,
)

__all__ = ["example_grid", "per_class_chart", "reliability_diagram", "robustness_curve"]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def robustness_curve(points: Sequence[CurvePoint]) -> bytes:
    """Accuracy against ε, one line per attack."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(p.attack for p in points):
        series = sorted((p for p in points if p.attack == name), key=lambda p: p.eps)
        ax.plot([p.eps for p in series], [p.accuracy for p in series], marker="o", label=name)
    ax.set_xlabel("ε (budget)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Robustness curve")
    return _png(fig)


def reliability_diagram(series: Sequence[ReliabilityBins]) -> bytes:
    """Accuracy against confidence per bin, one panel per input kind."""
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 4), squeeze=False)
    for ax, bins in zip(axes[0], series, strict=True):
        edges = np.asarray(bins.edges)
        width = np.diff(edges)
        acc = np.array([np.nan if a is None else a for a in bins.accuracy], dtype=float)
        conf = np.array([np.nan if c is None else c for c in bins.confidence], dtype=float)
        ax.bar(
            edges[:-1],
            np.nan_to_num(acc),
            width=width,
            align="edge",
            alpha=0.7,
            edgecolor="black",
            label="accuracy",
        )
        ax.plot(conf, acc, "o", color="tab:red", label="mean confidence")
        ax.plot([0, 1], [0, 1], "--", color="gray")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{bins.label} (ECE {bins.ece:.3f})")
        ax.legend(loc="upper left")
    return _png(fig)


def per_class_chart(rows: Sequence[PerClass]) -> bytes:
    """Clean and robust accuracy side by side per class."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(rows) + 2), 4))
    index = np.arange(len(rows))
    ax.bar(index - 0.2, [r.clean_accuracy for r in rows], width=0.4, label="clean")
    ax.bar(index + 0.2, [r.robust_accuracy for r in rows], width=0.4, label="worst-case robust")
    ax.set_xticks(index, [r.label for r in rows])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title("Per-class accuracy")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    return _png(fig)


def _image(array: object) -> np.ndarray:
    img = np.asarray(array, dtype=float)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
    clipped: np.ndarray = np.clip(img, 0.0, 1.0)
    return clipped


def example_grid(grid: ExampleGrid) -> bytes:
    """Top row clean inputs, bottom row their worst-case adversarial versions."""
    n = len(grid.sample_ids)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
    for j in range(n):
        for row, (images, preds) in enumerate(
            ((grid.clean, grid.clean_predictions), (grid.adversarial, grid.adversarial_predictions))
        ):
            ax = axes[row][j]
            img = _image(images[j])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            wrong = preds[j] != grid.labels[j]
            ax.set_title(f"pred {preds[j]}", fontsize=9, color="red" if wrong else "black")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][j].set_xlabel(f"#{grid.sample_ids[j]} true {grid.labels[j]}", fontsize=8)
    axes[0][0].set_ylabel("clean")
    axes[1][0].set_ylabel("attacked")
    return _png(fig)
