"""Adversarial-input detection: two complementary scores, one threshold for a target FPR.

* **Feature-squeezing disagreement** (Xu, Evans & Qi, NDSS 2018): an adversarial input sits
  close to a decision boundary the attacker pushed it over, so coarsening it (bit depth,
  median filter) tends to move the prediction back; a clean input's prediction barely moves.
  Score: the largest L1 distance between the softmax of the input and of a squeezed copy.
* **Mahalanobis distance on penultimate features** (Lee et al., NeurIPS 2018, without input
  pre-processing): fit class means and one shared covariance on training features; score an
  input by its distance to the nearest class. Inputs the attacker moved off the data manifold
  land far from every class.

The two are calibrated jointly on clean validation data: each raw score becomes its empirical
CDF value among clean scores, the combined score is the maximum over methods, and the flag
threshold is the ``1 - fpr`` quantile of the combined clean scores — so the *union* of the
methods has the target false-positive rate on that data, not each method alone.

Gradient story: ``DETECTOR``. The detector never edits the input. Both scores are
differentiable in the logits/features (squeezing through BPDA), and ``raw_scores`` keeps
gradients when called outside ``torch.no_grad``, so an adaptive attack can add them to its
loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from bastion.defend.base import Gradient, Stage
from bastion.defend.squeeze import Squeezer

__all__ = ["Detection", "Detector", "Mahalanobis", "SqueezeDisagreement", "fpr_threshold"]


def fpr_threshold(clean_scores: NDArray[np.float64], fpr: float) -> float:
    """Smallest threshold ``t`` with ``mean(clean > t) <= fpr`` (flag when score > t)."""
    if clean_scores.size == 0:
        raise ValueError("no clean scores to calibrate a threshold on")
    ordered = np.sort(clean_scores)
    allowed = int(np.floor(fpr * ordered.size))  # how many clean samples may exceed t
    return float(ordered[ordered.size - 1 - allowed]) if allowed < ordered.size else -np.inf


class SqueezeDisagreement:
    """Max over squeezers of ``|| softmax(f(x)) - softmax(f(squeeze(x))) ||_1``, in [0, 2]."""

    label: ClassVar[str] = "squeeze"

    def __init__(self, *, squeezers: Sequence[Squeezer]) -> None:
        if not squeezers:
            raise ValueError("feature squeezing needs at least one squeezer")
        self.squeezers = tuple(squeezers)

    def extra_inputs(self, x: Tensor) -> list[Tensor]:
        """The squeezed copies whose predictions the score needs (batched by the caller)."""
        return [s(x) for s in self.squeezers]

    @staticmethod
    def score(probs: Tensor, squeezed_probs: Sequence[Tensor]) -> Tensor:
        """Differentiable form (for adaptive attacks)."""
        distances = torch.stack([(probs - p).abs().sum(dim=1) for p in squeezed_probs])
        return distances.max(dim=0).values

    @staticmethod
    def score_numpy(
        probs: NDArray[np.float64], squeezed_probs: Sequence[NDArray[np.float64]]
    ) -> NDArray[np.float64]:
        """Serving form: the same number, without per-op torch overhead on tiny batches."""
        out: NDArray[np.float64] = np.max(
            [np.abs(probs - p).sum(axis=1) for p in squeezed_probs], axis=0
        )
        return out


class Mahalanobis:
    """Distance of penultimate features to the nearest class mean under a shared covariance."""

    label: ClassVar[str] = "mahalanobis"

    def __init__(self, *, ridge: float = 1e-6) -> None:
        self.ridge = ridge
        self.means: Tensor | None = None
        self.precision: Tensor | None = None
        self._means_np: NDArray[np.float64] = np.zeros((0, 0))
        self._precision_np: NDArray[np.float64] = np.zeros((0, 0))

    def fit(self, features: Tensor, labels: Tensor, num_classes: int) -> Mahalanobis:
        feats = features.detach().to(torch.float64)
        means = torch.zeros(num_classes, feats.shape[1], dtype=torch.float64)
        centred = torch.empty_like(feats)
        for c in range(num_classes):
            rows = labels == c
            if rows.any():
                means[c] = feats[rows].mean(dim=0)
            centred[rows] = feats[rows] - means[c]
        cov = centred.T @ centred / max(1, feats.shape[0])
        scale = float(torch.diagonal(cov).mean()) or 1.0
        cov = cov + self.ridge * scale * torch.eye(cov.shape[0], dtype=torch.float64)
        precision = torch.linalg.pinv(cov, hermitian=True)
        self.means = means.to(torch.float32)
        self.precision = precision.to(torch.float32)
        self._means_np = means.numpy()
        self._precision_np = precision.numpy()
        return self

    def score(self, features: Tensor) -> Tensor:
        if self.means is None or self.precision is None:
            raise RuntimeError("Mahalanobis.fit must run before score")
        diff = features[:, None, :] - self.means[None, :, :]  # N, K, D
        dist = torch.einsum("nkd,de,nke->nk", diff, self.precision, diff)
        return dist.min(dim=1).values

    def score_numpy(self, features: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        if self.means is None:
            raise RuntimeError("Mahalanobis.fit must run before score")
        diff = features.astype(np.float64)[:, None, :] - self._means_np[None, :, :]
        dist: NDArray[np.float64] = ((diff @ self._precision_np) * diff).sum(axis=2).min(axis=1)
        return dist


@dataclass(frozen=True)
class Detection:
    """Per-sample detector output: raw scores per method, the combined score, the flag."""

    scores: dict[str, NDArray[np.float64]]
    combined: NDArray[np.float64]
    flagged: NDArray[np.bool_]
    reasons: list[list[str]]


class Detector:
    """The ``detect`` layer: squeezing disagreement and/or Mahalanobis, jointly calibrated."""

    name: ClassVar[str] = "detect"
    stage: ClassVar[Stage] = Stage.OUTPUT
    gradient: ClassVar[Gradient] = Gradient.DETECTOR

    def __init__(
        self,
        *,
        squeeze: SqueezeDisagreement | None = None,
        mahalanobis: Mahalanobis | None = None,
    ) -> None:
        if squeeze is None and mahalanobis is None:
            raise ValueError("a detector needs at least one method")
        self.squeeze = squeeze
        self.mahalanobis = mahalanobis
        self._clean: dict[str, NDArray[np.float64]] = {}
        self.threshold: float | None = None
        self.target_fpr: float | None = None

    @property
    def methods(self) -> list[str]:
        out = []
        if self.squeeze is not None:
            out.append(SqueezeDisagreement.label)
        if self.mahalanobis is not None:
            out.append(Mahalanobis.label)
        return out

    def extra_inputs(self, x: Tensor) -> list[Tensor]:
        return self.squeeze.extra_inputs(x) if self.squeeze is not None else []

    def raw_scores(
        self, *, probs: Tensor, squeezed_probs: Sequence[Tensor], features: Tensor | None
    ) -> dict[str, Tensor]:
        """Each method's score (higher = more suspicious); differentiable where inputs are."""
        scores: dict[str, Tensor] = {}
        if self.squeeze is not None:
            scores[SqueezeDisagreement.label] = self.squeeze.score(probs, squeezed_probs)
        if self.mahalanobis is not None:
            if features is None:
                raise RuntimeError("the Mahalanobis score needs penultimate features")
            scores[Mahalanobis.label] = self.mahalanobis.score(features)
        return scores

    def scores_numpy(
        self,
        *,
        probs: NDArray[np.float64],
        squeezed_probs: Sequence[NDArray[np.float64]],
        features: NDArray[np.floating[Any]] | None,
    ) -> dict[str, NDArray[np.float64]]:
        """The serving path's scores: equal to :meth:`raw_scores`, computed in numpy."""
        scores: dict[str, NDArray[np.float64]] = {}
        if self.squeeze is not None:
            scores[SqueezeDisagreement.label] = self.squeeze.score_numpy(probs, squeezed_probs)
        if self.mahalanobis is not None:
            if features is None:
                raise RuntimeError("the Mahalanobis score needs penultimate features")
            scores[Mahalanobis.label] = self.mahalanobis.score_numpy(features)
        return scores

    def calibrate(self, clean: Mapping[str, Tensor | NDArray[Any]], *, fpr: float) -> None:
        """Fix the threshold so the union of methods flags ``fpr`` of these clean inputs."""
        arrays = {k: _as_numpy(v) for k, v in clean.items()}
        self._clean = {k: np.sort(v) for k, v in arrays.items()}
        self.threshold = fpr_threshold(self._combine(arrays), fpr)
        self.target_fpr = fpr

    def _cdf(self, method: str, values: NDArray[np.float64]) -> NDArray[np.float64]:
        ref = self._clean[method]
        return np.searchsorted(ref, values, side="right").astype(np.float64) / ref.size

    def _combine(self, scores: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        combined: NDArray[np.float64] = np.max(
            np.stack([self._cdf(k, v) for k, v in scores.items()]), axis=0
        )
        return combined

    def decide(self, scores: Mapping[str, Tensor | NDArray[Any]]) -> Detection:
        if self.threshold is None:
            raise RuntimeError("Detector.calibrate must run before decide")
        raw = {k: _as_numpy(v) for k, v in scores.items()}
        cdfs = {k: self._cdf(k, v) for k, v in raw.items()}
        combined = np.max(np.stack(list(cdfs.values())), axis=0)
        flagged = combined > self.threshold
        reasons = [
            [f"detect.{k}" for k, c in cdfs.items() if c[i] > self.threshold] if flagged[i] else []
            for i in range(combined.size)
        ]
        return Detection(scores=raw, combined=combined, flagged=flagged, reasons=reasons)


def _as_numpy(values: Tensor | NDArray[Any]) -> NDArray[np.float64]:
    if isinstance(values, Tensor):
        return values.detach().double().numpy()
    return np.asarray(values, dtype=np.float64)
