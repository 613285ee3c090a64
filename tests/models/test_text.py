"""The reference text models: they learn the SMS spam task, and their artifacts round-trip
exactly and refuse to load when damaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bastion.data.sms_spam import read_messages
from bastion.errors import ModelError
from bastion.models.text import (
    CharBagNet,
    TfidfLogReg,
    load_text_model,
    read_text_spec,
    save_text_model,
)


@pytest.fixture(scope="module")
def split(shared_data: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Every other message trains, every fourth of the rest tests (stratification by
    interleaving: the file mixes ham and spam throughout)."""
    texts, labels = read_messages(shared_data / "sms_spam")
    train = list(range(0, len(texts), 2))
    test = list(range(1, len(texts), 8))
    return (
        [texts[i] for i in train],
        labels[train],
        [texts[i] for i in test],
        labels[test],
    )


def _f1(model: TfidfLogReg | CharBagNet, texts: list[str], labels: np.ndarray) -> float:
    predicted = model.predict_proba(texts).argmax(axis=1)
    tp = np.sum((predicted == 1) & (labels == 1))
    return float(2 * tp / (np.sum(predicted == 1) + np.sum(labels == 1)))


def test_tfidf_learns_spam_and_round_trips(
    split: tuple[list[str], np.ndarray, list[str], np.ndarray], tmp_path: Path
) -> None:
    x, y, x_test, y_test = split
    model = TfidfLogReg().fit(x, y)
    assert _f1(model, x_test, y_test) > 0.9
    folder = save_text_model(model, tmp_path / "tfidf", extra={"note": "baseline"})
    loaded = load_text_model(folder)
    np.testing.assert_array_equal(loaded.predict_proba(x_test), model.predict_proba(x_test))
    spec = read_text_spec(folder)
    assert spec.kind == "tfidf_logreg"
    assert spec.extra == {"note": "baseline"}
    assert spec.classes == ("ham", "spam")


def test_char_bag_learns_spam_and_round_trips(
    split: tuple[list[str], np.ndarray, list[str], np.ndarray], tmp_path: Path
) -> None:
    x, y, x_test, y_test = split
    model = CharBagNet(epochs=4).fit(x, y)
    assert _f1(model, x_test, y_test) > 0.8
    probs = model.predict_proba(x_test)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    loaded = load_text_model(save_text_model(model, tmp_path / "bag"))
    np.testing.assert_allclose(loaded.predict_proba(x_test), probs, atol=1e-6)


def test_damaged_artifacts_are_refused(
    split: tuple[list[str], np.ndarray, list[str], np.ndarray], tmp_path: Path
) -> None:
    x, y, _, _ = split
    folder = save_text_model(TfidfLogReg().fit(x[:400], y[:400]), tmp_path / "m")
    weights = folder / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelError, match="sha256"):
        load_text_model(folder)
    spec = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**spec, "kind": "gpt"}))
    with pytest.raises(ModelError, match="kind must be one of"):
        load_text_model(folder)
    (folder / "model.json").unlink()
    with pytest.raises(ModelError, match=r"model\.json is missing"):
        load_text_model(folder)


def test_bad_training_inputs_are_named() -> None:
    with pytest.raises(ModelError, match="not str"):
        TfidfLogReg().fit(["a", 3], [0, 1])  # type: ignore[list-item]
    with pytest.raises(ModelError, match=r"labels must lie in 0\.\.1"):
        TfidfLogReg().fit(["a", "b"], [0, 2])
    with pytest.raises(ModelError, match="two classes"):
        TfidfLogReg().fit(["a", "b"], [1, 1])
    with pytest.raises(ModelError, match="not trained"):
        TfidfLogReg().predict_proba(["a"])
    with pytest.raises(ModelError, match="analyzer"):
        TfidfLogReg(analyzer="bytes")
