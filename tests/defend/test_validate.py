"""Decoding and range validation name the offending field."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from bastion.defend.validate import RangeCheck, decode_inputs
from bastion.errors import RejectionError

SHAPE = (1, 8, 8)


def _decode(payload: object) -> np.ndarray:
    raw, _ = decode_inputs(payload, input_shape=SHAPE, scale=16.0, max_batch=4)
    return raw


def _field(payload: object) -> str | None:
    with pytest.raises(RejectionError) as info:
        _decode(payload)
    assert info.value.status == 422
    return info.value.field


def _png(array: np.ndarray, mode: str = "L") -> str:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_single_and_batch_nested_lists_decode_on_the_raw_scale() -> None:
    sample = np.arange(64, dtype=np.float32).reshape(SHAPE) % 17
    single = _decode({"input": sample.tolist()})
    batch = _decode({"inputs": [sample.tolist(), sample.tolist()]})
    assert single.shape == (1, *SHAPE)
    assert batch.shape == (2, *SHAPE)
    np.testing.assert_array_equal(batch[1], sample)


def test_png_decodes_to_the_raw_scale() -> None:
    pixels = np.zeros((8, 8), dtype=np.uint8)
    pixels[2, 3] = 255
    raw = _decode({"input": _png(pixels)})
    assert raw[0, 0, 2, 3] == pytest.approx(16.0)
    assert raw.sum() == pytest.approx(16.0)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([1, 2], "body"),
        ({"input": 1, "inputs": [1]}, "body"),
        ({"sample": []}, "sample"),
        ({"inputs": []}, "inputs"),
        ({"inputs": [[[0] * 8] * 8] * 5}, "inputs"),
        ({"inputs": [np.zeros(SHAPE).tolist(), [[0] * 8] * 8]}, "inputs[1]"),
        ({"input": [[["a"] * 8] * 8]}, "input"),
        ({"input": [[[True] * 8] * 8]}, "input"),
        ({"input": [[[0] * 8] * 7 + [[0] * 7]]}, "input"),
        ({"input": 3}, "input"),
        ({"input": "not base64!"}, "input"),
        ({"input": base64.b64encode(b"GIF89a....").decode()}, "input"),
        ({"input": _png(np.zeros((9, 8), dtype=np.uint8))}, "input"),
        ({"input": _png(np.zeros((8, 8, 3), dtype=np.uint8), "RGB")}, "input"),
    ],
)
def test_structural_errors_name_the_field(payload: object, field: str) -> None:
    assert _field(payload) == field


def test_non_finite_values_name_the_element() -> None:
    sample = np.zeros(SHAPE)
    sample[0, 3, 5] = np.nan
    assert _field({"inputs": [np.zeros(SHAPE).tolist(), sample.tolist()]}) == "inputs[1][0][3][5]"


def test_range_check_names_the_first_out_of_range_element() -> None:
    check = RangeCheck(scale=16.0)
    raw = np.zeros((2, *SHAPE), dtype=np.float32)
    check.check(raw, "inputs")
    raw[1, 0, 6, 2] = 16.5
    with pytest.raises(RejectionError) as info:
        check.check(raw, "inputs")
    assert info.value.field == "inputs[1][0][6][2]"
    assert "16.5" in info.value.message
    raw[1, 0, 6, 2] = -1
    with pytest.raises(RejectionError) as info:
        check.check(raw[1:], "input")
    assert info.value.field == "input[0][6][2]"
