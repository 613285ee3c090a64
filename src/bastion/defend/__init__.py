"""Runtime defences: small layers, each with a stated gradient story, that the server stacks.

Request layers (:class:`ApiKeyCheck`, :class:`BodySizeLimit`, :class:`RateLimit`) guard the
HTTP request; :func:`decode_inputs` and :class:`RangeCheck` guard the raw values;
:class:`Guard` runs squeezing, one batched forward pass, detection, calibration and the
ensemble vote. ``Gradient`` says how an evaluation attacks through each layer.
"""

from bastion.defend.auth import ApiKeyCheck, KeyVerifier, extract_key
from bastion.defend.base import Gradient, Stage
from bastion.defend.calibrate import TemperatureScaling
from bastion.defend.detect import (
    Detection,
    Detector,
    Mahalanobis,
    SqueezeDisagreement,
    fpr_threshold,
)
from bastion.defend.ensemble import EnsembleDisagreement
from bastion.defend.ratelimit import RateLimit
from bastion.defend.size import BodySizeLimit
from bastion.defend.squeeze import BitDepth, MedianFilter, Squeeze, Squeezer
from bastion.defend.stack import Guard, Verdict
from bastion.defend.validate import RangeCheck, decode_inputs, input_scale

__all__ = [
    "ApiKeyCheck",
    "BitDepth",
    "BodySizeLimit",
    "Detection",
    "Detector",
    "EnsembleDisagreement",
    "Gradient",
    "Guard",
    "KeyVerifier",
    "Mahalanobis",
    "MedianFilter",
    "RangeCheck",
    "RateLimit",
    "Squeeze",
    "SqueezeDisagreement",
    "Squeezer",
    "Stage",
    "TemperatureScaling",
    "Verdict",
    "decode_inputs",
    "extract_key",
    "fpr_threshold",
    "input_scale",
]
