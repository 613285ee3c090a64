"""The shipped migrations build exactly the ORM schema, once, and refuse unknown revisions."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from bastion.errors import RegistryError
from bastion.registry import Registry
from bastion.registry.migrate import HEAD_REVISION, SCRIPT_LOCATION, upgrade
from bastion.registry.tables import Base


def test_head_constant_matches_the_newest_script() -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_migrated_database_matches_the_orm_metadata(db_url: str, tmp_path: Path) -> None:
    Registry.open(url=db_url, artifacts=tmp_path / "store").close()
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == []
            assert conn.execute(text("SELECT count, last_hash FROM audit_head")).one() == (
                0,
                "0" * 64,
            )
    finally:
        engine.dispose()


def test_migrations_run_once(db_url: str, tmp_path: Path) -> None:
    with Registry.open(url=db_url, artifacts=tmp_path / "store") as registry:
        db = registry.database
        assert upgrade(db.engine, db.engine.execution_options(bastion_write=True)) is False


def test_a_database_from_a_newer_bastion_is_refused(db_url: str, tmp_path: Path) -> None:
    Registry.open(url=db_url, artifacts=tmp_path / "store").close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(RegistryError, match="written by a newer Bastion"):
        Registry.open(url=db_url, artifacts=tmp_path / "store")
