"""Registry fixtures: every test runs on SQLite and, when a server is given, on PostgreSQL.

PostgreSQL tests use the server named by ``BASTION_TEST_POSTGRES_URL`` (CI starts one with
``scripts/ci_postgres.sh``) and get a fresh schema each, dropped afterwards, so tests can
run in parallel on one database.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bastion.registry import Registry

PG_ENV = "BASTION_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search path is a new, empty schema."""
    base = os.environ.get(PG_ENV, "").strip()
    if not base:
        message = f'{PG_ENV} is not set; start a server with: eval "$(scripts/ci_postgres.sh)"'
        if os.environ.get("BASTION_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of the backend under test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def registry(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("BASTION_ACTOR", "tester")
    with Registry.open(url=db_url, artifacts=tmp_path / "store") as reg:
        yield reg


@pytest.fixture
def make_artifact(tmp_path: Path) -> Callable[..., Path]:
    """Make a small model folder; each call has different content unless ``content`` is given."""
    counter = itertools.count()

    def make(content: bytes | None = None) -> Path:
        n = next(counter)
        folder = tmp_path / f"model-{n}"
        folder.mkdir()
        (folder / "weights.pt").write_bytes(content if content is not None else b"w%d" % n)
        (folder / "model.json").write_text('{"architecture": "mlp"}')
        return folder

    return make
