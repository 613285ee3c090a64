"""API keys: stored hashed, verified in constant time, revocable, outside the audit chain."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text

from bastion.errors import NotFoundError, RegistryError
from bastion.registry import Registry
from bastion.registry.keys import ApiKeyStore


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


def test_keys_do_not_disturb_the_audit_chain(tmp_path: Path) -> None:
    with Registry.open(url=f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path) as registry:
        store = ApiKeyStore(registry.database)
        store.revoke(store.create("alice").key.key_id)
        assert registry.audit.verify().ok
