"""The guarded server with a text model: sanitising, flagging, review queue, validation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.serve.conftest import client, run

from bastion.config.serve import ServeConfig
from bastion.defend.text import Sanitizer
from bastion.errors import ModelError, ServeError
from bastion.models.text import TfidfLogReg, save_text_model
from bastion.registry import Registry
from bastion.registry.keys import ApiKeyStore
from bastion.serve.registry import RegistryReviewSink
from bastion.serve.run import ServeSpec, build_app
from bastion.serve.text import TextServedModel, create_text_app, load_text_model_dir

HAM = [
    "are we still meeting for lunch tomorrow",
    "can you pick up milk on the way home",
    "see you at the station at six",
    "thanks for the birthday wishes mum",
    "i will call you back after the meeting",
    "did you finish the report for monday",
    "lets watch a film tonight at home",
    "the bus is late again sorry",
]
SPAM = [
    "win a free prize now claim your cash reward",
    "urgent you have won a free holiday call now",
    "free entry to win cash text win to claim",
    "claim your free prize reward now limited offer",
    "congratulations you won cash call now to claim",
    "free cash prize waiting claim now urgent",
    "you have been selected to win a free reward",
    "win free cash now text claim to enter",
]
# Cyrillic а/о/е/р and a zero-width space inside "free": the sanitiser must undo all of it.
DISGUISED = "win а frе\u200be рrizе nоw clаim yоur cаsh rеwаrd"

Build = Callable[..., FastAPI]


@pytest.fixture(scope="module")
def text_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sanitizer = Sanitizer()
    model = TfidfLogReg(
        classes=("ham", "spam"), analyzer="word", ngram_min=1, ngram_max=1, min_df=1
    )
    model.fit(sanitizer(HAM + SPAM), [0] * len(HAM) + [1] * len(SPAM))
    folder = tmp_path_factory.mktemp("text") / "spam_filter"
    return save_text_model(model, folder, extra={"sanitizer": sanitizer.describe()})


@pytest.fixture
def make_text_app(text_artifact: Path, registry: Registry, keys: ApiKeyStore) -> Build:
    def build(*, sanitize: bool | None = None, max_chars: int = 200, **settings: Any) -> FastAPI:
        settings.setdefault("require_api_key", False)
        settings.setdefault("abstain_below", 0.0)
        return create_text_app(
            model=load_text_model_dir(text_artifact, version="spam_filter:1"),
            config=ServeConfig(**settings),
            keys=keys,
            review=RegistryReviewSink(registry),
            sanitize=sanitize,
            max_chars=max_chars,
        )

    return build


def _post(app: FastAPI, body: Any, **headers: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with client(app, **headers) as http:
            return await http.post("/v1/predict", json=body)

    return run(go())


def test_loading_keeps_the_artifact_sanitizer(text_artifact: Path) -> None:
    served = load_text_model_dir(text_artifact)
    assert served.sanitizer == Sanitizer()
    assert served.classes == ("ham", "spam")


def test_predicts_text_with_the_image_response_shape(make_text_app: Build) -> None:
    response = _post(make_text_app(), {"texts": [SPAM[0], HAM[0]]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "spam_filter:1"
    assert response.headers["x-request-id"] == body["request_id"]
    spam, ham = body["predictions"]
    assert spam["label"] == "spam"
    assert ham["label"] == "ham"
    for p in (spam, ham):
        assert sum(p["probabilities"]) == pytest.approx(1.0)
        assert p["confidence"] == pytest.approx(max(p["probabilities"]))
        assert p["flagged"] is False
        assert p["reasons"] == []
        assert p["abstained"] is False
    single = _post(make_text_app(), {"text": HAM[1]}).json()["predictions"]
    assert len(single) == 1
    assert single[0]["label"] == "ham"


def test_disguised_spam_is_sanitized_flagged_and_queued(
    make_text_app: Build, registry: Registry
) -> None:
    body = _post(make_text_app(), {"text": DISGUISED}).json()
    (prediction,) = body["predictions"]
    assert prediction["label"] == "spam"
    assert prediction["flagged"] is True
    assert prediction["reasons"] == ["sanitized"]
    items = {item.request_id: item for item in registry.review.list()}
    item = items[body["request_id"]]
    assert item.inputs["text"] == DISGUISED
    assert item.inputs["sanitized"] == Sanitizer().sanitize(DISGUISED)
    assert "\u200b" not in item.inputs["sanitized"]
    assert list(item.reasons) == ["sanitized"]
    assert "free prize" in item.inputs["sanitized"]
    assert item.model == "spam_filter:1"


def test_without_sanitising_nothing_is_flagged(make_text_app: Build, registry: Registry) -> None:
    body = _post(make_text_app(sanitize=False), {"text": DISGUISED}).json()
    assert body["predictions"][0]["flagged"] is False
    assert registry.review.list() == []


def test_low_confidence_abstains_and_is_queued(make_text_app: Build, registry: Registry) -> None:
    body = _post(make_text_app(abstain_below=1.0), {"text": HAM[2]}).json()
    (prediction,) = body["predictions"]
    assert prediction["abstained"] is True
    assert prediction["label"] is None
    assert "calibrate.low_confidence" in prediction["reasons"]
    assert body["request_id"] in {item.request_id for item in registry.review.list()}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"texts": []}, "texts"),
        ({"text": 3}, "text"),
        ({"texts": ["fine", ["nested"]]}, "texts[1]"),
        ({"texts": "not a list"}, "texts"),
        ({"text": "x" * 201}, "text"),
        ({"text": "a", "texts": ["b"]}, "body"),
        ({"txt": "a"}, "txt"),
        ({"input": [[[0.0] * 8] * 8]}, "input"),
        ({"inputs": ["iVBORw0KGgo="]}, "inputs"),
    ],
)
def test_bad_payloads_are_422_naming_the_field(
    make_text_app: Build, body: dict[str, Any], field: str
) -> None:
    response = _post(make_text_app(), body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["field"] == field


def test_image_payload_message_says_text_model(make_text_app: Build) -> None:
    error = _post(make_text_app(), {"input": [[[0.0]]]}).json()["error"]
    assert "text model" in error["message"]


def test_text_payload_to_an_image_model_is_422(make_app: Build, raw_test: list[Any]) -> None:
    response = _post(make_app(require_api_key=False), {"text": "free cash"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "text"
    assert "images" in error["message"]


def test_request_layers_apply_to_text(make_text_app: Build, keys: ApiKeyStore) -> None:
    app = make_text_app(require_api_key=True, max_body_bytes=64, rate_limit="1/minute")
    assert _post(app, {"text": HAM[0]}).status_code == 401
    token = keys.create("tests").token
    assert _post(app, {"text": "x" * 100}, **{"x-api-key": token}).status_code == 413
    assert _post(app, {"text": HAM[0]}, **{"x-api-key": token}).status_code == 200
    assert _post(app, {"text": HAM[0]}, **{"x-api-key": token}).status_code == 429


def test_image_only_layers_are_skipped_with_a_log_line(
    make_text_app: Build, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bastion.serve"):
        make_text_app()
    assert any("skipping image-only layers" in r.getMessage() for r in caplog.records)


def test_sanitising_needs_a_review_queue(text_artifact: Path) -> None:
    model: TextServedModel = load_text_model_dir(text_artifact)
    with pytest.raises(ServeError, match="review queue"):
        create_text_app(model=model, config=ServeConfig(layers=[]))


def test_serve_spec_with_a_text_model_dir_builds_the_text_app(
    text_artifact: Path, tmp_path: Path
) -> None:
    spec = ServeSpec(
        model_dir=str(text_artifact),
        registry_url=f"sqlite:///{tmp_path / 'r.db'}",
        serve=ServeConfig(require_api_key=False, abstain_below=0.0),
    )
    app = build_app(spec)
    body = _post(app, {"text": SPAM[1]}).json()
    assert body["predictions"][0]["label"] == "spam"


def test_a_damaged_text_artifact_is_refused(text_artifact: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text(
        (text_artifact / "model.json").read_text().replace('"layer"', '"bogus": true, "layer"')
    )
    with pytest.raises(ModelError, match="sanitiser"):
        load_text_model_dir(broken)
