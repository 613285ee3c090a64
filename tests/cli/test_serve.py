"""``bastion serve`` as a real uvicorn process on loopback, and the keys/review commands."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bastion.cli import app
from bastion.config import DataConfig
from bastion.data import Dataset, load_dataset
from bastion.errors import IntegrityError
from bastion.registry import Registry
from bastion.serve.review import ReviewEntry

runner = CliRunner()
_MAIN = "from bastion.cli import main; main()"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("BASTION_DATABASE_URL", url)
    monkeypatch.setenv("BASTION_ACTOR", "reviewer@test")
    return url


def _invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_keys_create_list_revoke(db_env: str) -> None:
    token = _invoke("keys", "create", "ci-bot").stdout.strip().splitlines()[-1]
    assert token.startswith("bst_")
    listed = json.loads(_invoke("keys", "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["ci-bot"]
    assert token not in json.dumps(listed)
    _invoke("keys", "revoke", listed[0]["key_id"])
    listed = json.loads(_invoke("keys", "list", "--json").stdout)
    assert listed[0]["revoked_at"] is not None


def test_audit_verify_covers_key_create_and_revoke(db_env: str) -> None:
    token = _invoke("keys", "create", "ci-bot").stdout.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    _invoke("keys", "revoke", key_id)
    assert "audit log OK: 2 entries" in _invoke("audit", "verify").stdout
    entries = json.loads(_invoke("audit", "log", "--entity", "api_keys", "--json").stdout)
    assert [(e["action"], e["entity_id"]) for e in entries] == [
        ("api_key.create", key_id),
        ("api_key.revoke", key_id),
    ]
    assert token.split("_", 2)[2] not in json.dumps(entries)
    # un-revoking the key behind Bastion's back is caught
    with sqlite3.connect(db_env.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = NULL")
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code != 0
    assert isinstance(result.exception, IntegrityError)
    assert f"api_keys row {key_id} was changed outside Bastion" in result.stderr


def test_review_list_show_label_export(db_env: str, tmp_path: Path, digits: Dataset) -> None:
    from bastion.serve.registry import RegistryReviewSink

    with Registry.open(url=db_env) as registry:
        sink = RegistryReviewSink(registry)
        sink.add(
            [
                ReviewEntry(
                    request_id=f"req{i}",
                    model="digits:1",
                    inputs={"raw": (digits.test.x[i] * 16).tolist(), "scale": 16.0},
                    outputs={"label": None, "confidence": 0.3, "classes": list(digits.classes)},
                    scores={"detect": 0.99},
                    reasons=["detect.squeeze"],
                )
                for i in range(3)
            ]
        )
    listed = json.loads(_invoke("review", "list", "--json").stdout)
    assert [r["request_id"] for r in listed] == ["req0", "req1", "req2"]
    shown = json.loads(_invoke("review", "show", "req1").stdout)
    assert shown["scores"] == {"detect": 0.99}
    bad = runner.invoke(app, ["review", "label", "req0", "cat"])
    assert bad.exit_code != 0
    for i in (0, 2):
        _invoke("review", "label", f"req{i}", str(digits.test.y[i]))
    out = tmp_path / "reviewed.npz"
    _invoke("review", "export", str(out))
    dataset = load_dataset(
        DataConfig(name="npz", path=out, val_fraction=0.0, test_fraction=0.5, seed=0)
    )
    rows = np.concatenate([dataset.train.x, dataset.test.x])
    labels = np.concatenate([dataset.train.y, dataset.test.y])
    assert rows.shape == (2, 1, 8, 8)
    assert dataset.classes == digits.classes
    expected = {tuple(digits.test.x[i].ravel().round(5)): digits.test.y[i] for i in (0, 2)}
    for row, label in zip(rows, labels, strict=True):
        assert expected[tuple(row.ravel().round(5))] == label
    with Registry.open(url=db_env) as registry:
        labelled = registry.review.get("req0")
        assert labelled.labelled_by == "reviewer@test"
        assert any(e.action == "review.label" for e in registry.audit.log())


@pytest.fixture
def server(tmp_path: Path, digits_cnn_dir: Path) -> Iterator[tuple[str, str]]:
    port = _free_port()
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    config = {
        "data": {"name": "digits"},
        "registry": {"url": url},
        "serve": {"port": port, "rate_limit": "1000/minute"},
    }
    (tmp_path / "bastion.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "BASTION_DATABASE_URL": url}
    token = subprocess.run(
        [sys.executable, "-c", _MAIN, "keys", "create", "loopback"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    command = [
        sys.executable,
        "-c",
        _MAIN,
        "serve",
        "--model-dir",
        str(digits_cnn_dir),
        "--config",
        str(tmp_path / "bastion.yaml"),
    ]
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"server exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"server not ready within 120 s:\n{log.read_text()}")
        yield base, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow  # a real server process: imports torch, fits the detector (~20-40 s loaded)
def test_serve_runs_under_uvicorn_on_loopback(server: tuple[str, str], digits: Dataset) -> None:
    base, token = server
    sample = (digits.test.x[0] * 16).tolist()
    anonymous = httpx.post(f"{base}/v1/predict", json={"input": sample})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    answer = httpx.post(f"{base}/v1/predict", json={"input": sample}, headers={"x-api-key": token})
    assert answer.status_code == 200, answer.text
    prediction = answer.json()["predictions"][0]
    assert prediction["class_index"] == int(digits.test.y[0])
    assert set(prediction["scores"]) >= {"squeeze", "mahalanobis"}
    model = httpx.get(f"{base}/v1/model").json()
    assert [layer["name"] for layer in model["layers"] if layer["enabled"]] == [
        "api_key",
        "body_size",
        "rate_limit",
        "validate",
        "detect",
        "calibrate",
        "ensemble",
    ]
    assert "bastion_requests_total" in httpx.get(f"{base}/metrics").text
