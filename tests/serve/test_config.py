"""The serve section: typed layers, stage order, limits."""

from __future__ import annotations

import pytest

from bastion.config import parse_config
from bastion.errors import ConfigError


def _serve(**serve: object) -> object:
    return parse_config({"data": {"name": "digits"}, "serve": serve}).serve


def test_defaults_are_the_full_stack_in_stage_order() -> None:
    serve = _serve()
    assert [layer.name for layer in serve.layers] == [  # type: ignore[attr-defined]
        "api_key",
        "body_size",
        "rate_limit",
        "validate",
        "squeeze",
        "detect",
        "calibrate",
        "ensemble",
    ]
    assert serve.layer("squeeze") is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("serve", "message"),
    [
        ({"layers": [{"name": "detect"}, {"name": "validate"}]}, "cannot come after"),
        ({"layers": [{"name": "detect"}, {"name": "detect"}]}, "listed twice"),
        ({"layers": [{"name": "detekt"}]}, "serve.layers[0]"),
        ({"layers": [{"name": "squeeze", "options": {}}]}, "at least one"),
        ({"layers": [{"name": "detect", "options": {"bits": 3}}]}, "unknown key"),
        ({"rate_limit": "many"}, "serve.rate_limit"),
        ({"rate_limit_storage": "mongodb://x"}, "redis"),
        ({"detector_target_fpr": 0}, "serve.detector_target_fpr"),
    ],
)
def test_bad_serve_settings_name_the_field(serve: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _serve(**serve)
    assert message in str(info.value)


def test_layer_options_are_typed() -> None:
    serve = _serve(
        layers=[{"name": "squeeze", "options": {"bit_depth": 3, "median_size": 2}}],
        rate_limit="10/second;100/minute",
    )
    layer = serve.layer("squeeze")  # type: ignore[attr-defined]
    assert layer.options.bit_depth == 3
    assert layer.options.median_size == 2
