"""Hypothesis fuzzing of the whole API: whatever arrives, the answer is never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.registry.keys import ApiKeyStore

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=9) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=80,
)
near_valid = st.lists(
    st.lists(
        st.lists(st.floats(-2, 20) | st.integers(-5, 30), min_size=7, max_size=9),
        min_size=7,
        max_size=9,
    ),
    min_size=1,
    max_size=2,
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"input": near_valid}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"inputs": st.lists(near_valid, max_size=3)}).map(
        lambda v: json.dumps(v).encode()
    ),
    st.binary(max_size=200),
)


@pytest.fixture
def fuzz_client(make_app: Callable[..., FastAPI], keys: ApiKeyStore) -> Iterator[Any]:
    app = make_app(max_body_bytes=5000, rate_limit="100000/minute")  # the full default stack
    token = keys.create("fuzz").token
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http, token


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies,
    path=st.sampled_from(["/v1/predict", "/v1/predict", "/v1/model", "/readyz", "/x"]),
    method=st.sampled_from(["POST", "POST", "GET", "PUT"]),
    auth=st.sampled_from(["valid", "none", "garbage"]),
    content_type=st.sampled_from(["application/json", "text/plain", "image/png"]),
)
def test_no_input_makes_the_server_fail(
    fuzz_client: Any, body: bytes, path: str, method: str, auth: str, content_type: str
) -> None:
    http, token = fuzz_client
    headers = {"content-type": content_type}
    if auth == "valid":
        headers["x-api-key"] = token
    elif auth == "garbage":
        headers["authorization"] = "Bearer \x7f" + token[:5]
    response = http.request(method, path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}
