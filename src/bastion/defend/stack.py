"""The tensor half of the served pipeline: squeeze, predict, detect, calibrate, vote.

The HTTP layer decodes and checks a request; :class:`Guard` takes the resulting batch in
[0, 1] and returns one :class:`Verdict` per sample. It keeps the layers cheap by running the
primary model *once* per request on the input and every squeezed copy the detector needs,
concatenated into one batch, and by reusing that pass's penultimate features for the
Mahalanobis score — the prediction and the detectors share one forward pass.

``differentiable_logits`` is the same pipeline as an attackable function (BPDA through the
squeezers, exact through temperature and ensemble averaging), so an evaluation can attack
what is served rather than the bare model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from bastion.config.serve import DetectLayer, EnsembleLayer, ServeConfig, SqueezeLayer
from bastion.defend.calibrate import TemperatureScaling
from bastion.defend.detect import Detector, Mahalanobis, SqueezeDisagreement, fpr_threshold
from bastion.defend.ensemble import EnsembleDisagreement
from bastion.defend.squeeze import BitDepth, MedianFilter, Squeeze, Squeezer

__all__ = ["Guard", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """The served answer for one input."""

    index: int
    probabilities: list[float]
    confidence: float
    abstained: bool
    flagged: bool
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def needs_review(self) -> bool:
        return self.flagged or self.abstained


def _has_features(model: nn.Module) -> bool:
    return callable(getattr(model, "features", None)) and isinstance(
        getattr(model, "head", None), nn.Module
    )


class Guard:
    """Squeeze → one batched forward pass → detector, calibration, ensemble → verdicts."""

    def __init__(
        self,
        *,
        members: Sequence[nn.Module],
        squeeze: Squeeze | None = None,
        detector: Detector | None = None,
        calibration: TemperatureScaling | None = None,
        ensemble: EnsembleDisagreement | None = None,
    ) -> None:
        if not members:
            raise ValueError("a guard needs at least one model")
        self.members = [m.eval() for m in members]
        self.squeeze = squeeze
        self.detector = detector
        self.calibration = calibration
        self.ensemble = ensemble if len(members) > 1 else None
        if (
            detector is not None
            and detector.mahalanobis is not None
            and not _has_features(self.members[0])
        ):
            raise ValueError("the Mahalanobis detector needs a model with .features(x) and .head")

    @classmethod
    def from_config(
        cls, config: ServeConfig, *, members: Sequence[nn.Module], temperature: float = 1.0
    ) -> Guard:
        """The enabled output and input layers of ``config`` around ``members``."""
        squeeze = None
        layer = config.layer("squeeze")
        if isinstance(layer, SqueezeLayer):
            squeeze = Squeeze.from_options(
                bit_depth=layer.options.bit_depth, median_size=layer.options.median_size
            )
        detector = None
        layer = config.layer("detect")
        if isinstance(layer, DetectLayer):
            opts = layer.options
            squeezers: list[Squeezer] = [BitDepth(bits=opts.squeeze_bit_depth)]
            if opts.squeeze_median_size is not None:
                squeezers.append(MedianFilter(size=opts.squeeze_median_size))
            detector = Detector(
                squeeze=SqueezeDisagreement(squeezers=squeezers)
                if "squeeze" in opts.methods
                else None,
                mahalanobis=Mahalanobis() if "mahalanobis" in opts.methods else None,
            )
        calibration = None
        if config.layer("calibrate") is not None:
            calibration = TemperatureScaling(
                temperature=temperature, abstain_below=config.abstain_below
            )
        ensemble = None
        layer = config.layer("ensemble")
        if isinstance(layer, EnsembleLayer):
            ensemble = EnsembleDisagreement(max_disagreement=layer.options.max_disagreement)
        return cls(
            members=members,
            squeeze=squeeze,
            detector=detector,
            calibration=calibration,
            ensemble=ensemble,
        )

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        *,
        x_train: Tensor,
        y_train: Tensor,
        x_val: Tensor,
        num_classes: int,
        target_fpr: float,
        batch_size: int = 512,
    ) -> Guard:
        """Fit Mahalanobis on training features; set thresholds for ``target_fpr`` on val."""
        detector = self.detector
        with torch.inference_mode():
            if detector is not None and detector.mahalanobis is not None:
                feats = torch.cat(
                    [
                        self._features(self._transform(x_train[i : i + batch_size]))
                        for i in range(0, x_train.shape[0], batch_size)
                    ]
                )
                detector.mahalanobis.fit(feats, y_train, num_classes)
            if detector is None and self.ensemble is None:
                return self
            raw: dict[str, list[Tensor]] = {}
            disagreement: list[Tensor] = []
            for i in range(0, x_val.shape[0], batch_size):
                out = self._forward(self._transform(x_val[i : i + batch_size]))
                for k, v in out.scores.items():
                    raw.setdefault(k, []).append(v)
                if out.disagreement is not None:
                    disagreement.append(out.disagreement)
        if detector is not None:
            detector.calibrate({k: torch.cat(v) for k, v in raw.items()}, fpr=target_fpr)
        if self.ensemble is not None and self.ensemble.threshold is None:
            clean = torch.cat(disagreement).double().numpy()
            self.ensemble.threshold = fpr_threshold(clean, target_fpr)
        return self

    # ------------------------------------------------------------------ serving
    def __call__(self, x: Tensor) -> list[Verdict]:
        """Verdicts for a batch ``x`` of shape (N, *input_shape) in [0, 1]."""
        with torch.inference_mode():
            out = self._forward(self._transform(x))
        probs = out.probs.double().numpy()
        confidence = probs.max(axis=1)
        abstained = (
            self.calibration.abstain(out.probs).numpy()
            if self.calibration is not None
            else np.zeros(len(probs), dtype=bool)
        )
        flagged = np.zeros(len(probs), dtype=bool)
        reasons: list[list[str]] = [[] for _ in range(len(probs))]
        scores: list[dict[str, float]] = [{} for _ in range(len(probs))]
        if self.detector is not None:
            detection = self.detector.decide(out.scores)
            flagged |= detection.flagged
            for i in range(len(probs)):
                reasons[i].extend(detection.reasons[i])
                scores[i].update({k: _finite(v[i]) for k, v in detection.scores.items()})
                scores[i]["detect"] = _finite(detection.combined[i])
        if self.ensemble is not None and out.disagreement is not None:
            ens_flag = self.ensemble.flag(out.disagreement).numpy()
            flagged |= ens_flag
            for i in range(len(probs)):
                scores[i]["ensemble_disagreement"] = _finite(out.disagreement[i].item())
                if ens_flag[i]:
                    reasons[i].append("ensemble.disagreement")
        for i in range(len(probs)):
            if abstained[i]:
                reasons[i].append("calibrate.low_confidence")
        return [
            Verdict(
                index=int(probs[i].argmax()),
                probabilities=[float(p) for p in probs[i]],
                confidence=float(confidence[i]),
                abstained=bool(abstained[i]),
                flagged=bool(flagged[i]),
                reasons=reasons[i],
                scores=scores[i],
            )
            for i in range(len(probs))
        ]

    def differentiable_logits(self, x: Tensor) -> Tensor:
        """The served prediction as log-probabilities, attackable end to end (BPDA)."""
        if self.squeeze is not None:
            x = self.squeeze.differentiable(x)
        temperature = self.calibration.temperature if self.calibration is not None else 1.0
        probs = torch.stack([torch.softmax(m(x) / temperature, dim=1) for m in self.members])
        return torch.log(probs.mean(dim=0).clamp_min(1e-12))

    # ------------------------------------------------------------------ internals
    def _transform(self, x: Tensor) -> Tensor:
        return self.squeeze(x) if self.squeeze is not None else x

    def _features(self, x: Tensor) -> Tensor:
        features: Tensor = self.members[0].features(x)  # type: ignore[operator]
        return features

    def _forward(self, x: Tensor) -> _Outputs:
        n = x.shape[0]
        primary = self.members[0]
        extra = self.detector.extra_inputs(x) if self.detector is not None else []
        batch = torch.cat([x, *extra]) if extra else x
        features = None
        if self.detector is not None and self.detector.mahalanobis is not None:
            all_features = self._features(batch)
            all_logits = primary.head(all_features)  # type: ignore[operator]
            features = all_features[:n]
        else:
            all_logits = primary(batch)
        logits = all_logits[:n]
        temperature = self.calibration.temperature if self.calibration is not None else 1.0
        member_probs = [torch.softmax(logits / temperature, dim=1)]
        member_probs += [torch.softmax(m(x) / temperature, dim=1) for m in self.members[1:]]
        stacked = torch.stack(member_probs)
        probs = stacked.mean(dim=0)
        scores: dict[str, Tensor] = {}
        if self.detector is not None:
            plain = torch.softmax(all_logits, dim=1)
            squeezed = (
                [plain[n * (j + 1) : n * (j + 2)] for j in range(len(extra))] if extra else []
            )
            scores = self.detector.raw_scores(
                probs=plain[:n], squeezed_probs=squeezed, features=features
            )
        disagreement = EnsembleDisagreement.score(stacked) if self.ensemble is not None else None
        return _Outputs(probs=probs, scores=scores, disagreement=disagreement)


@dataclass(frozen=True)
class _Outputs:
    probs: Tensor
    scores: dict[str, Tensor]
    disagreement: Tensor | None


def _finite(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else float(np.finfo(np.float64).max)
