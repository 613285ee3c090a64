"""API keys: stored hashed, verified from a cache, revocable, and audited like every write."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text

from bastion.errors import NotFoundError, RegistryError
from bastion.registry import Registry
from bastion.registry.keys import ApiKeyStore
from bastion.registry.migrate import SCRIPT_LOCATION


@pytest.fixture
def store(tmp_path: Path) -> ApiKeyStore:
    registry = Registry.open(url=f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path)
    return ApiKeyStore(registry.database, cache_seconds=60)


def test_only_the_hash_of_the_secret_is_stored(store: ApiKeyStore) -> None:
    created = store.create("alice")
    secret = created.token.split("_", 2)[2]
    with store._db.engine.connect() as conn:
        rows = conn.execute(text("SELECT key_id, secret_sha256 FROM api_keys")).all()
    assert rows == [(created.key.key_id, hashlib.sha256(secret.encode()).hexdigest())]
    assert secret not in str(rows)


def test_verify_accepts_the_token_and_nothing_near_it(store: ApiKeyStore) -> None:
    created = store.create("alice")
    other = store.create("bob")
    assert store.verify(created.token) == created.key.key_id
    assert store.verify(created.token[:-1] + ("A" if created.token[-1] != "A" else "B")) is None
    swapped = f"bst_{other.key.key_id}_{created.token.split('_', 2)[2]}"
    assert store.verify(swapped) is None
    assert store.verify("") is None
    assert store.verify("bst_zz_" + "x" * 40) is None


def test_revocation_is_immediate_despite_the_cache(store: ApiKeyStore) -> None:
    created = store.create("alice")
    assert store.verify(created.token) == created.key.key_id  # now cached for 60 s
    store.revoke(created.key.key_id)
    assert store.verify(created.token) is None
    assert not store.list()[0].active
    with pytest.raises(NotFoundError):
        store.revoke("000000000000")
    with pytest.raises(RegistryError, match="name"):
        store.create("  ")


def test_create_and_revoke_are_audited_without_the_secret(db_url: str, tmp_path: Path) -> None:
    with Registry.open(url=db_url, artifacts=tmp_path / "store") as registry:
        store = ApiKeyStore(registry.database)
        created = store.create("alice")
        store.revoke(created.key.key_id)
        store.revoke(created.key.key_id)  # no change, so no entry
        entries = registry.audit.log(entity="api_keys")
        assert [(e.action, e.entity_id) for e in entries] == [
            ("api_key.create", created.key.key_id),
            ("api_key.revoke", created.key.key_id),
        ]
        secret = created.token.split("_", 2)[2]
        assert all(secret not in str(e) for e in entries)
        assert registry.audit.verify().ok


def test_a_key_edited_behind_bastion_fails_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Registry.open(url=url, artifacts=tmp_path) as registry:
        key = ApiKeyStore(registry.database).create("alice").key
        assert registry.audit.verify().ok
        with registry.database.engine.begin() as conn:
            conn.execute(text("UPDATE api_keys SET revoked_at = NULL, name = 'mallory'"))
        report = registry.audit.verify()
    assert not report.ok
    assert any(f"api_keys row {key.key_id} was changed" in p for p in report.problems)


def test_a_cached_key_is_verified_without_touching_the_database(store: ApiKeyStore) -> None:
    created = store.create("alice")
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    engine: Engine = store._db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert store.verify(created.token) == created.key.key_id
        first = len(statements)
        assert first > 0
        for _ in range(50):
            assert store.verify(created.token) == created.key.key_id
        assert len(statements) == first
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_keys_from_before_the_migration_are_kept_and_adopted(tmp_path: Path) -> None:
    """A database where the old code created ``api_keys`` by hand upgrades cleanly."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            text(
                "CREATE TABLE api_keys (key_id VARCHAR(12) NOT NULL PRIMARY KEY, "
                "secret_sha256 VARCHAR(64) NOT NULL, name VARCHAR(200) NOT NULL, "
                "created_at DATETIME NOT NULL, created_by VARCHAR(200) NOT NULL, "
                "revoked_at DATETIME)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO api_keys VALUES ('0123456789ab', :digest, 'old', "
                "'2026-11-01 10:00:00.000000', 'ops', NULL)"
            ),
            {"digest": hashlib.sha256(b"s" * 43).hexdigest()},
        )
    engine.dispose()
    with Registry.open(url=url, artifacts=tmp_path) as registry:
        store = ApiKeyStore(registry.database)
        assert store.verify("bst_0123456789ab_" + "s" * 43) == "0123456789ab"
        assert [e.action for e in registry.audit.log(entity="api_keys")] == ["api_key.adopt"]
        store.revoke("0123456789ab")
        assert registry.audit.verify().ok
