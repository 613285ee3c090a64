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
from numpy.typing import NDArray
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
        self.fit_samples: int | None = None
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
        guard = cls(
            members=members,
            squeeze=squeeze,
            detector=detector,
            calibration=calibration,
            ensemble=ensemble,
        )
        if isinstance(layer := config.layer("detect"), DetectLayer):
            guard.fit_samples = layer.options.fit_samples
        return guard

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
        fit_samples: int | None = None,
    ) -> Guard:
        """Fit Mahalanobis on training features; set thresholds for ``target_fpr`` on val.

        Validation scores come from the very code path that serves requests, so the
        thresholds mean the same thing at serving time.
        """
        detector = self.detector
        fit_samples = fit_samples if fit_samples is not None else self.fit_samples
        if fit_samples is not None:
            x_train, y_train = x_train[:fit_samples], y_train[:fit_samples]
        if detector is not None and detector.mahalanobis is not None:
            with torch.inference_mode():
                feats = torch.cat(
                    [
                        self._features(self._transform(x_train[i : i + batch_size]))
                        for i in range(0, x_train.shape[0], batch_size)
                    ]
                )
            detector.mahalanobis.fit(feats, y_train, num_classes)
        if detector is None and self.ensemble is None:
            return self
        outs = [self._forward(x_val[i : i + batch_size]) for i in range(0, len(x_val), batch_size)]
        if detector is not None:
            clean = {k: np.concatenate([o.scores[k] for o in outs]) for k in outs[0].scores}
            detector.calibrate(clean, fpr=target_fpr)
        if self.ensemble is not None and self.ensemble.threshold is None:
            clean_dis = np.concatenate([o.disagreement for o in outs if o.disagreement is not None])
            self.ensemble.threshold = fpr_threshold(clean_dis, target_fpr)
        return self

    # ------------------------------------------------------------------ serving
    def __call__(self, x: Tensor) -> list[Verdict]:
        """Verdicts for a batch ``x`` of shape (N, *input_shape) in [0, 1]."""
        out = self._forward(x)
        probs = out.probs
        n = len(probs)
        confidence = probs.max(axis=1)
        abstained = (
            confidence < self.calibration.abstain_below
            if self.calibration is not None
            else np.zeros(n, dtype=bool)
        )
        flagged = np.zeros(n, dtype=bool)
        reasons: list[list[str]] = [[] for _ in range(n)]
        scores: list[dict[str, float]] = [{} for _ in range(n)]
        if self.detector is not None:
            detection = self.detector.decide(out.scores)
            flagged |= detection.flagged
            for i in range(n):
                reasons[i].extend(detection.reasons[i])
                for k, v in detection.scores.items():
                    scores[i][k] = _finite(v[i])
                scores[i]["detect"] = _finite(detection.combined[i])
        if self.ensemble is not None and out.disagreement is not None:
            threshold = self.ensemble.threshold
            if threshold is None:
                raise RuntimeError("set or fit the disagreement threshold before serving")
            ens_flag = out.disagreement > threshold
            flagged |= ens_flag
            for i in range(n):
                scores[i]["ensemble_disagreement"] = _finite(out.disagreement[i])
                if ens_flag[i]:
                    reasons[i].append("ensemble.disagreement")
        labels = probs.argmax(axis=1)
        verdicts = []
        for i in range(n):
            if abstained[i]:
                reasons[i].append("calibrate.low_confidence")
            verdicts.append(
                Verdict(
                    index=int(labels[i]),
                    probabilities=probs[i].tolist(),
                    confidence=float(confidence[i]),
                    abstained=bool(abstained[i]),
                    flagged=bool(flagged[i]),
                    reasons=reasons[i],
                    scores=scores[i],
                )
            )
        return verdicts

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
        """One batched pass of the primary model (input + squeezed copies), then numpy.

        Torch runs only the network; the scores on these tiny outputs are cheaper in numpy
        than as a dozen torch ops of fixed per-op overhead.
        """
        primary = self.members[0]
        features_np = None
        with torch.inference_mode():
            x = self._transform(x)
            n = x.shape[0]
            extra = self.detector.extra_inputs(x) if self.detector is not None else []
            batch = torch.cat([x, *extra]) if extra else x
            if self.detector is not None and self.detector.mahalanobis is not None:
                features = self._features(batch)
                all_logits = primary.head(features)  # type: ignore[operator]
                features_np = features[:n].numpy()
            else:
                all_logits = primary(batch)
            others = [m(x).numpy() for m in self.members[1:]]
        logits = all_logits.numpy().astype(np.float64)
        temperature = self.calibration.temperature if self.calibration is not None else 1.0
        member_probs = [_softmax(logits[:n] / temperature)]
        member_probs += [_softmax(o.astype(np.float64) / temperature) for o in others]
        stacked = np.stack(member_probs)
        probs = stacked.mean(axis=0) if len(member_probs) > 1 else member_probs[0]
        scores: dict[str, NDArray[np.float64]] = {}
        if self.detector is not None:
            plain = _softmax(logits)  # the detector compares untempered probabilities
            squeezed = [plain[n * (j + 1) : n * (j + 2)] for j in range(len(extra))]
            scores = self.detector.scores_numpy(
                probs=plain[:n], squeezed_probs=squeezed, features=features_np
            )
        disagreement = None
        if self.ensemble is not None:
            votes = stacked.argmax(axis=2)
            disagreement = (votes != probs.argmax(axis=1)[None, :]).mean(axis=0)
        return _Outputs(probs=probs, scores=scores, disagreement=disagreement)


@dataclass(frozen=True)
class _Outputs:
    probs: NDArray[np.float64]
    scores: dict[str, NDArray[np.float64]]
    disagreement: NDArray[np.float64] | None


def _softmax(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: NDArray[np.float64] = shifted / shifted.sum(axis=1, keepdims=True)
    return out


def _finite(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else float(np.finfo(np.float64).max)
