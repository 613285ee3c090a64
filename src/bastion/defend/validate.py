"""Turning a request's inputs into a model batch, and refusing what is not a valid input.

Decoding is not optional — a model cannot run on a ragged list — so :func:`decode_inputs`
always checks structure: a list of samples, each a nested list of numbers of exactly the
model's input shape, or a base64 PNG of its size and channels, all finite. The ``validate``
layer (:class:`RangeCheck`) then enforces the value range of the raw scale (e.g. 0..16 for
the digits scanner): out-of-range values are a classic way to push a model off its data
manifold cheaply. Every refusal is a 422 naming the field (``inputs[2][0][3][1]``).

Raw values are mapped to the model's [0, 1] by ``input_scaling["scale"]`` (raw / scale);
PNG pixels by their bit depth (/255 or /65535). Gradient story: ``NONE`` for the range check
(it accepts or refuses, never edits); decoding is the identity on valid inputs.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from bastion.defend.base import Gradient, Stage
from bastion.errors import RejectionError

__all__ = ["RangeCheck", "decode_inputs", "input_scale"]

_PNG_MODES = {1: ("L", "I;16", "I"), 3: ("RGB",)}


def input_scale(input_scaling: Mapping[str, float]) -> float:
    """The raw value that maps to 1.0 (``raw / scale`` in [0, 1])."""
    return float(input_scaling.get("scale", 1.0))


def _invalid(message: str, field: str) -> RejectionError:
    return RejectionError(message, status=422, code="invalid_input", layer="validate", field=field)


def decode_inputs(
    payload: Any, *, input_shape: Sequence[int], scale: float, max_batch: int
) -> tuple[NDArray[np.float32], str]:
    """``({"input": x} | {"inputs": [x, ...]})`` -> (raw-scale float32 batch, field prefix).

    PNG samples are returned already on the raw scale (pixel fraction * ``scale``), so one
    range check applies to both encodings.
    """
    if not isinstance(payload, dict):
        raise _invalid("the body must be a JSON object with 'input' or 'inputs'", "body")
    if "text" in payload or "texts" in payload:
        key = "text" if "text" in payload else "texts"
        raise _invalid("this model takes images, not text: send 'input' or 'inputs'", key)
    unknown = sorted(set(payload) - {"input", "inputs"})
    if unknown:
        raise _invalid("unknown field (expected 'input' or 'inputs')", unknown[0])
    if ("input" in payload) == ("inputs" in payload):
        raise _invalid("give exactly one of 'input' (one sample) or 'inputs' (a batch)", "body")
    if "input" in payload:
        samples, prefix = [payload["input"]], "input"
    else:
        samples, prefix = payload["inputs"], "inputs"
        if not isinstance(samples, list):
            raise _invalid(f"must be a list of samples; got {type(samples).__name__}", prefix)
        if not samples:
            raise _invalid("must hold at least one sample", prefix)
        if len(samples) > max_batch:
            raise _invalid(f"at most {max_batch} samples per request; got {len(samples)}", prefix)
    shape = tuple(int(d) for d in input_shape)
    out = np.empty((len(samples), *shape), dtype=np.float32)
    for i, sample in enumerate(samples):
        field = prefix if prefix == "input" else f"{prefix}[{i}]"
        if isinstance(sample, str):
            out[i] = _decode_png(sample, shape, field) * scale
        else:
            out[i] = _decode_list(sample, shape, field)
    return out, prefix


def _decode_list(sample: Any, shape: tuple[int, ...], field: str) -> NDArray[np.float32]:
    if not isinstance(sample, list):
        raise _invalid(
            f"a sample is a nested list of numbers or a base64 PNG string; "
            f"got {type(sample).__name__}",
            field,
        )
    try:
        array = np.asarray(sample)
    except ValueError:
        raise _invalid(f"ragged nested list; expected shape {list(shape)}", field) from None
    if array.dtype.kind not in "iuf":
        what = {"b": "booleans", "U": "strings", "O": "mixed or nested values"}.get(
            array.dtype.kind, str(array.dtype)
        )
        raise _invalid(f"values must be numbers; got {what}", field)
    if array.shape != shape:
        raise _invalid(f"expected shape {list(shape)}; got {list(array.shape)}", field)
    values = array.astype(np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        index = tuple(int(j) for j in np.argwhere(bad)[0])
        raise _invalid(
            f"values must be finite; got {array[index]!r}", field + "".join(f"[{j}]" for j in index)
        )
    return values


def _decode_png(text: str, shape: tuple[int, ...], field: str) -> NDArray[np.float32]:
    if len(shape) != 3 or shape[0] not in _PNG_MODES:
        raise _invalid(f"PNG input needs a (1 or 3, H, W) model; this one takes {shape}", field)
    channels, height, width = shape
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("not valid base64", field) from None
    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as image:
            if image.size != (width, height):
                raise _invalid(
                    f"expected a {width}x{height} PNG; got {image.size[0]}x{image.size[1]}",
                    field,
                )
            if image.mode not in _PNG_MODES[channels]:
                want = "grayscale (L)" if channels == 1 else "RGB"
                raise _invalid(f"expected a {want} PNG; got mode {image.mode}", field)
            pixels = np.asarray(image, dtype=np.float32)
            depth = 255.0 if image.mode in ("L", "RGB") else 65535.0
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise _invalid("not a readable PNG image", field) from None
    pixels = pixels[None, :, :] if channels == 1 else pixels.transpose(2, 0, 1)
    scaled: NDArray[np.float32] = np.clip(pixels / depth, 0.0, 1.0).astype(np.float32)
    return scaled


class RangeCheck:
    """422 when a raw value lies outside ``[0, scale]``, naming the first offending element."""

    name: ClassVar[str] = "validate"
    stage: ClassVar[Stage] = Stage.INPUT
    gradient: ClassVar[Gradient] = Gradient.NONE

    def __init__(self, *, scale: float) -> None:
        self.scale = scale

    def check(self, raw: NDArray[np.float32], prefix: str) -> None:
        bad = (raw < 0) | (raw > self.scale)
        if not bad.any():
            return
        index = tuple(int(j) for j in np.argwhere(bad)[0])
        sample, rest = index[0], index[1:]
        field = (prefix if prefix == "input" else f"{prefix}[{sample}]") + "".join(
            f"[{j}]" for j in rest
        )
        raise _invalid(f"out of range [0, {self.scale:g}]; got {float(raw[index]):g}", field)
